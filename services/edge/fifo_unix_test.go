//go:build unix

package edge

import "syscall"

// mkfifo makes a named pipe at path (mode 0600).
func mkfifo(path string) error { return syscall.Mkfifo(path, 0o600) }
