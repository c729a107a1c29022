package safefile

import "syscall"

// stRdonly is statfs's ST_RDONLY flag: the mount is read-only.
const stRdonly = 0x1

// readOnlyFSOf reports whether path is on a read-only mount (statfs
// reports the mount's own flags, so a read-only bind mount counts).
func readOnlyFSOf(path string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return false
	}
	return int64(st.Flags)&stRdonly != 0
}
