//go:build !unix

package edge

import "errors"

// mkfifo fails: no named pipes in the file system here.
func mkfifo(string) error { return errors.New("no FIFOs on this system") }
