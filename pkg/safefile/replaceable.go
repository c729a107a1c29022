package safefile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// CheckReplaceable reports whether another local user could replace the
// file path (opened by Open, fi its FileInfo) or change what it holds, and
// returns an *ExposedError saying what and the chmod/chown that fixes it.
// It is for files the gateway trusts but which are no secret: a trust
// store or CA bundle (whoever writes it adds a CA of theirs) and
// config.json (whoever writes it points the LDAP URL at their host and
// receives the bind password). It applies CheckPrivate's owner and
// directory rules and refuses a mode that lets group or others write
// (mode & 0o022), but has no read rule: such a file may be world-readable.
//
// A file or directory on a read-only mount (statfs ST_RDONLY; a Kubernetes
// ConfigMap or Secret volume, which kubelet makes from an emptyDir of mode
// 0777 and mounts read-only) cannot be changed by anyone, whatever its mode
// or owner, and passes. A process run as root checks the modes only, as
// CheckPrivate does (see trustedOwner). On Windows it checks nothing.
func CheckReplaceable(path string, fi os.FileInfo) error {
	if !checksOwners {
		return nil
	}
	if !readOnlyFS(path) {
		if perm := fi.Mode().Perm(); perm&0o022 != 0 {
			return &ExposedError{Path: path, Reason: fmt.Sprintf("has mode %04o: group or others may write it, and so replace what it holds", perm),
				Fix: "chmod go-w " + path}
		}
		if uid, ok := owner(fi); ok && !trustedOwner(uid) {
			return &ExposedError{Path: path, Reason: fmt.Sprintf("is owned by user %d, neither this process's user (%d) nor root: that user can rewrite it", uid, euid()),
				Fix: fmt.Sprintf("chown %d %s (the user segmesh runs as), or root", euid(), path)}
		}
	}
	return checkDirs(path)
}

// ReadTrusted is Read for a file the gateway trusts (CheckReplaceable): it
// is refused, with CheckReplaceable's *ExposedError, when another user
// could replace it. The check is made on the descriptor that is then read,
// so the file cannot be swapped between the check and the read.
func ReadTrusted(path string, limit int64) ([]byte, error) {
	f, fi, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	if err := CheckReplaceable(path, fi); err != nil {
		return nil, err
	}
	return readBounded(f, path, limit)
}

// maxLinks bounds the symbolic links checkDirs follows (Linux's own bound
// is 40).
const maxLinks = 40

// checkDirs checks every directory above path, as sshd's StrictModes does
// for authorized_keys: the one holding path and each one above it up to
// /; then, when path is a symbolic link, the same for each link it leads
// through and for the file it resolves to (a Kubernetes volume's
// name -> ..data/name -> ..<timestamp>/name). Whoever can write any of
// these directories can replace the file, or a directory on its way, with
// one of theirs. The usual layouts pass: /etc, /var/lib and /home/<user>
// are written by root or their user only, /tmp and /var/tmp are sticky
// (an entry in them is then judged by its owner), and a read-only mount
// passes whatever its modes.
func checkDirs(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return &ExposedError{Path: path, Reason: "cannot be checked: " + err.Error(), Fix: "name the file by its absolute path"}
	}
	seen := map[string]bool{}
	e := abs
	for range maxLinks {
		if err := checkChain(e, path, seen); err != nil {
			return err
		}
		li, err := os.Lstat(e)
		if err != nil || li.Mode()&os.ModeSymlink == 0 {
			break
		}
		target, err := os.Readlink(e)
		if err != nil {
			break
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(e), target)
		}
		e = target
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return checkChain(real, path, seen)
	}
	return nil
}

// checkChain checks the directory holding entry and each one above it,
// skipping the entries seen already.
func checkChain(entry, path string, seen map[string]bool) error {
	for holding := true; ; holding = false {
		dir := filepath.Dir(entry)
		if dir == entry || seen[entry] {
			return nil
		}
		seen[entry] = true
		what := "(a directory above " + path + ")"
		if holding {
			what = "(the directory holding " + path + ")"
		}
		if err := checkDir(entry, dir, path, what); err != nil {
			return err
		}
		entry = dir
	}
}

// checkDir checks dir, the directory holding entry: the file path, a link
// on its way or a directory above it; what names dir's place in messages.
func checkDir(entry, dir, path, what string) error {
	if readOnlyFS(dir) {
		// A read-only mount: no entry in it can be added, renamed or
		// removed, whatever its modes.
		return nil
	}
	di, err := os.Stat(dir)
	if err != nil {
		return &ExposedError{Path: dir, Reason: what + " cannot be checked: " + err.Error(), Fix: "make the directories holding " + path + " readable by segmesh"}
	}
	if uid, ok := owner(di); ok && !trustedOwner(uid) {
		return &ExposedError{Path: dir, Reason: fmt.Sprintf("%s is owned by user %d, neither this process's user (%d) nor root: that user can replace the file", what, uid, euid()),
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
	return &ExposedError{Path: dir, Reason: fmt.Sprintf("%s has mode %04o: group or others may write it, and so replace the file", what, perm),
		Fix: "chmod go-w " + dir + ", or move the file to a directory only its owner writes"}
}

// readBounded reads f, the file at path, when it holds at most limit
// bytes (Read's bound).
func readBounded(f *os.File, path string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: %w", path, limit, ErrTooLarge)
	}
	return data, nil
}
