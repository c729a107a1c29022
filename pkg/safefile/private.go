package safefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrExposed is wrapped by CheckPrivate's error: another user could read
// or replace the secret file.
var ErrExposed = errors.New("exposed to other users")

// ExposedError is CheckPrivate's finding: what lets another user read or
// replace the file and the command that fixes it.
type ExposedError struct {
	// Path is the file (or, for a directory finding, the directory).
	Path string
	// Reason says what is wrong, starting with the verb ("has mode 0644:
	// ...").
	Reason string
	// Fix is the command that repairs it.
	Fix string
}

// Error returns "<path> <reason>".
func (e *ExposedError) Error() string { return e.Path + " " + e.Reason }

// About returns the finding as a clause about the secret file path: the
// reason alone when it is about path itself, else "<what> <reason>"
// naming the directory or entry it is about.
func (e *ExposedError) About(path string) string {
	if e.Path == path {
		return e.Reason
	}
	return e.Error()
}

// Unwrap returns ErrExposed.
func (e *ExposedError) Unwrap() error { return ErrExposed }

// CheckPrivate reports, as OpenSSH does for a private key and sshd's
// StrictModes for authorized_keys, whether another user could read or
// replace the secret file path (opened by Open, fi its FileInfo), and
// returns an *ExposedError when:
//   - its mode lets others read it or group or others write it (mode &
//     0o027; the group may read, for a Kubernetes Secret mounted with
//     fsGroup);
//   - it is owned by neither the process's user nor root (that user can
//     rewrite it); a process run as root checks the modes only, as it may
//     be an admin's `sudo segmesh config check` of the service user's files;
//   - a directory holding it (the one of path, and the one of the file
//     path leads to through symbolic links) is owned by neither, or lets
//     group or others write without the sticky bit: whoever writes a
//     directory can replace the file in it.
//
// On Windows (ACLs, not modes) it checks nothing.
func CheckPrivate(path string, fi os.FileInfo) error {
	if !checksOwners {
		return nil
	}
	if perm := fi.Mode().Perm(); perm&0o027 != 0 {
		return &ExposedError{Path: path, Reason: fmt.Sprintf("has mode %04o: others may read it or group or others may write it", perm),
			Fix: "chmod 600 " + path + " (0400; 0440 for a Kubernetes Secret mounted with fsGroup)"}
	}
	if uid, ok := owner(fi); ok && !trustedOwner(uid) {
		return &ExposedError{Path: path, Reason: fmt.Sprintf("is owned by user %d, neither this process's user (%d) nor root: that user can rewrite it", uid, euid()),
			Fix: fmt.Sprintf("chown %d %s (the user segmesh runs as), or root", euid(), path)}
	}
	entries := []string{path}
	if real, err := filepath.EvalSymlinks(path); err == nil && filepath.Dir(real) != filepath.Dir(path) {
		entries = append(entries, real)
	}
	for _, e := range entries {
		if err := checkDir(e, path); err != nil {
			return err
		}
	}
	return nil
}

// checkDir checks the directory holding entry, the secret file path or
// the file it leads to.
func checkDir(entry, path string) error {
	dir := filepath.Dir(entry)
	di, err := os.Stat(dir)
	if err != nil {
		return &ExposedError{Path: dir, Reason: "cannot be checked: " + err.Error(), Fix: "make the directory holding " + path + " readable by segmesh"}
	}
	if uid, ok := owner(di); ok && !trustedOwner(uid) {
		return &ExposedError{Path: dir, Reason: fmt.Sprintf("(the directory holding %s) is owned by user %d, neither this process's user (%d) nor root: that user can replace the file", path, uid, euid()),
			Fix: fmt.Sprintf("chown %d %s, or move the file to a directory owned by segmesh's user or root", euid(), dir)}
	}
	perm := di.Mode().Perm()
	if perm&0o022 == 0 {
		return nil
	}
	if di.Mode()&os.ModeSticky != 0 {
		// /tmp-like: others may add entries but not rename or remove one
		// they do not own, so the entry's own owner decides.
		if li, err := os.Lstat(entry); err == nil {
			if uid, ok := owner(li); !ok || uid == 0 || uid == euid() {
				return nil
			}
		}
		return &ExposedError{Path: entry, Reason: fmt.Sprintf("is in %s, which others may write (mode %04o), and is not owned by this process's user or root: its owner can replace it", dir, perm),
			Fix: "move the file to a directory only its owner writes"}
	}
	return &ExposedError{Path: dir, Reason: fmt.Sprintf("(the directory holding %s) has mode %04o: group or others may write it, and so replace the file", path, perm),
		Fix: "chmod go-w " + dir + ", or move the file to a directory only its owner writes"}
}

// euid is the process's effective user (a variable for the tests).
var euid = os.Geteuid

// trustedOwner reports whether uid may own a secret file or its directory:
// root or the process's user, or anyone when the process runs as root.
func trustedOwner(uid int) bool { return uid == 0 || uid == euid() || euid() == 0 }
