package safefile

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
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
	// HoldsKey reports whether the file was read as public (a certificate,
	// a CA bundle) and is refused for the private key it holds too (PEM, or a PFX's key bag)
	// (ReadChecked); false for a finding of the check the reader asked for.
	HoldsKey bool
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

// Explain returns the finding as a sentence about the file path, for a
// message: "another local user could <could> it: " and About(path), or,
// when it HoldsKey, "holds a private key another local user could read or
// replace: " and About(path), whatever could says.
func (e *ExposedError) Explain(path, could string) string {
	if e.HoldsKey {
		return "holds a private key another local user could read or replace: " + e.About(path)
	}
	return "another local user could " + could + " it: " + e.About(path)
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
//     rewrite it); a process run as root accepts root and ServiceUser (an
//     admin's `sudo segmesh config check` of the files the packages give
//     that user), as sshd's StrictModes accepts root or the user;
//   - a directory above it (every one from path's own up to /, and every
//     one above the file path leads to through symbolic links) is owned by
//     neither, or lets group or others write without the sticky bit:
//     whoever writes a directory can replace the file, or a directory, in
//     it (checkDirs).
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
	if err := ownerError(path, fi, "rewrite it"); err != nil {
		return err
	}
	return checkDirs(path)
}

// euid is the process's effective user (a variable for the tests).
var euid = os.Geteuid

// ServiceUser is the user the .deb and .rpm run segmesh as (made by
// deploy/package/scripts/postinstall.sh). A process run as root trusts the
// files it owns besides root's: an admin's `sudo segmesh config check`
// reads the files the packages gave it.
const ServiceUser = "segmesh"

// serviceUID returns ServiceUser's uid; ok is false when the machine has
// no such user (a variable for the tests). It is read from /etc/passwd,
// where the packages' `useradd --system` puts it, never through NSS: a
// build with cgo (`go build`, scripts/demo.sh) asked sssd or LDAP too, so
// on a host joined to a directory with no local segmesh user, a root
// process trusted the files of a directory user named segmesh (rvkey).
var serviceUID = func() (uid int, ok bool) { return passwdUID(passwdFile, ServiceUser) }

// passwdFile is the local user database serviceUID reads.
const passwdFile = "/etc/passwd"

// passwdUID returns the uid of the first line of the passwd(5) file path
// whose name is exactly name; ok is false when there is none (or path
// cannot be read). NIS's "+name" lines are not local users and do not match.
func passwdUID(path, name string) (uid int, ok bool) {
	f, fi, err := Open(path) // not Read: its key check asks trustedOwner
	if err != nil {
		return 0, false
	}
	defer func() { _ = f.Close() }()
	data, err := readBounded(f, path, 16<<20, fi.Size())
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.SplitN(line, ":", 4)
		if len(f) == 4 && f[0] == name {
			id, err := strconv.Atoi(f[2])
			return id, err == nil && id >= 0
		}
	}
	return 0, false
}

// trustedOwner reports whether uid may own a file the gateway trusts or
// its directory: root or the process's user; for a process run as root,
// root or ServiceUser. Any other owner can rewrite the file, or replace
// what a directory holds, whatever its mode: a gateway run as root
// trusted them all before (session 10).
func trustedOwner(uid int) bool {
	if uid == 0 || uid == euid() {
		return true
	}
	if euid() != 0 {
		return false
	}
	svc, ok := serviceUID()
	return ok && uid == svc
}

// trustedOwners says who trustedOwner accepts, for a finding.
func trustedOwners() string {
	if euid() != 0 {
		return fmt.Sprintf("neither this process's user (%d) nor root", euid())
	}
	if svc, ok := serviceUID(); ok {
		return fmt.Sprintf("neither root nor segmesh's service user %s (%d)", ServiceUser, svc)
	}
	return "neither root nor segmesh's service user " + ServiceUser + " (none on this machine)"
}

// ownerError is the finding for path (fi) owned by a user trustedOwner
// does not accept, saying what that user can do to it; nil otherwise. The
// one wording of CheckReplaceable's, CheckPrivate's and CheckDir's owner
// rule.
func ownerError(path string, fi os.FileInfo, can string) error {
	if uid, ok := owner(fi); ok && !trustedOwner(uid) {
		return &ExposedError{Path: path, Reason: fmt.Sprintf("is owned by user %d, %s: that user can %s", uid, trustedOwners(), can), Fix: chownFix(path)}
	}
	return nil
}

// chownFix is the fix of an owner finding on path.
func chownFix(path string) string {
	if euid() == 0 {
		return "chown root " + path + " (or " + ServiceUser + ", the user the packages run segmesh as)"
	}
	return fmt.Sprintf("chown %d %s (the user segmesh runs as), or root", euid(), path)
}

// readOnlyFS reports whether path is on a read-only mount (a variable for
// the tests).
var readOnlyFS = readOnlyFSOf

// ReadPrivate reads the secret file path (a private key, a PFX) as Read
// does, bounded by limit, after CheckPrivate on the opened descriptor: the
// file refused is the one that would have been read, never one swapped in
// after a check by path.
func ReadPrivate(path string, limit int64) ([]byte, error) {
	return ReadChecked(path, limit, CheckPrivate)
}
