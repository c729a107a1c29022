package safefile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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
// A directory on a read-only mount (statfs ST_RDONLY; a Kubernetes
// ConfigMap or Secret volume, which kubelet makes from an emptyDir of mode
// 0777 and mounts read-only) passes whatever its mode: no entry can be
// added, renamed or removed through that mount. Its owner and the file's
// own mode and owner are still checked: a read-only mount may be a bind
// mount of a directory someone else can write through its source (docker
// -v host:ctr:ro, mount --bind -o ro), and the file's inode is the same
// there; kubelet's volumes are root's and their files never group- or
// other-writable (0440 is or-ed in for read-only volumes). A process run as
// root accepts the owners root and ServiceUser only, as CheckPrivate does
// (see trustedOwner). On Windows it checks nothing.
func CheckReplaceable(path string, fi os.FileInfo) error {
	if !checksOwners {
		return nil
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return &ExposedError{Path: path, Reason: fmt.Sprintf("has mode %04o: group or others may write it, and so replace what it holds", perm),
			Fix: "chmod go-w " + path}
	}
	if err := ownerError(path, fi, "rewrite it"); err != nil {
		return err
	}
	return checkDirs(path)
}

// ReadTrusted is Read for a file the gateway trusts (CheckReplaceable): it
// is refused, with CheckReplaceable's *ExposedError, when another user
// could replace it. The check is made on the descriptor that is then read,
// so the file cannot be swapped between the check and the read.
func ReadTrusted(path string, limit int64) ([]byte, error) {
	return ReadChecked(path, limit, CheckReplaceable)
}

// ReadChecked opens path as Open does, makes check (when not nil) on the
// opened descriptor's FileInfo and only then reads it as Read does,
// bounded by limit: the file checked is the file read (Read, ReadTrusted,
// ReadPrivate, and callers with a check of their own choosing).
//
// A file that holds a private key (PEM armor in any form, or a PFX's key
// bag: holdsPrivateKey) is then held to CheckPrivate too,
// whatever check was asked for: a certificate or CA file read as public
// may be a combined PEM holding its key as well (`cat cert.pem key.pem`),
// and a key every local user may read lets each of them pose as the
// gateway (or, a CA's, issue what it trusts). Its error is then an
// *ExposedError with HoldsKey set, and nothing read is returned.
func ReadChecked(path string, limit int64, check func(string, os.FileInfo) error) ([]byte, error) {
	f, fi, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	if check != nil {
		if err := check(path, fi); err != nil {
			return nil, err
		}
	}
	data, err := readBounded(f, path, limit, fi.Size())
	if err != nil {
		return nil, err
	}
	if err := checkKeyInside(path, fi, data); err != nil {
		clear(data)
		return nil, err
	}
	return data, nil
}

// maxLinks bounds the symbolic links checkDirs follows (Linux's own bound
// is 40).
const maxLinks = 40

// checkDirs checks every directory above path, as sshd's StrictModes does
// for authorized_keys: the one holding path and each one above it up to
// /; then, resolving path one name at a time as the kernel does, the same
// for every symbolic link met on the way, at any place in the path (a
// Kubernetes volume's name -> ..data/name -> ..<timestamp>/name, or a
// directory /etc/segmesh/certs -> /srv/x/hop -> /opt/certs), and for the
// file it resolves to. Whoever can write any of these directories can
// replace the file, or a link or a directory on its way, with one of
// theirs. When a name on the way is gone (changed since the file was
// opened), the directory that held it is checked too. The usual layouts
// pass: /etc, /var/lib and /home/<user> are written by root or their user
// only, /tmp and /var/tmp are sticky (an entry in them is then judged by
// its owner), and a directory on a read-only mount passes whatever its
// mode.
func checkDirs(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return &ExposedError{Path: path, Reason: "cannot be checked: " + err.Error(), Fix: "name the file by its absolute path"}
	}
	seen := map[string]bool{}
	if err := checkChain(abs, path, "", seen); err != nil {
		return err
	}
	links, real := walkLinks(abs)
	for _, l := range links {
		if err := checkChain(l, path, l, seen); err != nil {
			return err
		}
	}
	if real != "" {
		return checkChain(real, path, "", seen)
	}
	return nil
}

// walkLinks resolves abs one name at a time, as the kernel's path walk
// does, and returns every symbolic link met on the way, each named by the
// link-free path of the directory holding it (so the directories above it
// are the ones the walk went through), and the resolved path. When a name
// cannot be read (gone since the open) or the links are too many, real is
// "" and that name is returned among links, so the directory that held it
// is checked.
func walkLinks(abs string) (links []string, real string) {
	rest := strings.Split(filepath.ToSlash(abs), "/")
	cur := string(filepath.Separator)
	for n := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, name)
		li, err := os.Lstat(next)
		if err != nil {
			return append(links, next), ""
		}
		if li.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		links = append(links, next)
		target, err := os.Readlink(next)
		if n++; err != nil || n > maxLinks {
			return links, ""
		}
		if filepath.IsAbs(target) {
			cur = string(filepath.Separator)
		}
		rest = append(strings.Split(filepath.ToSlash(target), "/"), rest...)
	}
	return links, cur
}

// checkChain checks the directory holding entry and each one above it,
// skipping the entries seen already; link is entry when it is a link on
// the way to path (for the message), else "".
func checkChain(entry, path, link string, seen map[string]bool) error {
	for holding := true; ; holding = false {
		dir := filepath.Dir(entry)
		if dir == entry || seen[entry] {
			return nil
		}
		seen[entry] = true
		what := "(a directory above " + path + ")"
		switch {
		case holding && link != "":
			what = "(the directory holding " + link + ", on the way to " + path + ")"
		case holding:
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
	di, err := os.Stat(dir)
	if err != nil {
		return &ExposedError{Path: dir, Reason: what + " cannot be checked: " + err.Error(), Fix: "make the directories holding " + path + " readable by segmesh"}
	}
	if uid, ok := owner(di); ok && !trustedOwner(uid) {
		// Also on a read-only mount: its owner may write its source.
		return &ExposedError{Path: dir, Reason: fmt.Sprintf("%s is owned by user %d, %s: that user can replace the file", what, uid, trustedOwners()),
			Fix: chownFix(dir) + ", or move the file to a directory owned by segmesh's user or root"}
	}
	perm := di.Mode().Perm()
	if perm&0o022 == 0 || readOnlyFS(dir) {
		// A read-only mount: no entry in it can be added, renamed or
		// removed through it, whatever its mode.
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
// bytes (Read's bound); size is its size when opened, the first guess of
// the buffer's. The file may be a secret (a key, the admin token), so no
// buffer it lets go of holds any of it: one outgrown is cleared once
// copied (io.ReadAll would leave each behind), and the bytes read so far
// are cleared before a "too large" or a read error is returned.
func readBounded(f io.Reader, path string, limit, size int64) ([]byte, error) {
	// One byte past the size (or the bound) to see the end of the file,
	// or that it holds more than the bound.
	buf := make([]byte, 0, min(max(size, 0), limit)+1)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				clear(buf)
				return nil, fmt.Errorf("%s is larger than %d bytes: %w", path, limit, ErrTooLarge)
			}
			grown := make([]byte, len(buf), min(int64(2*cap(buf))+512, limit+1))
			copy(grown, buf)
			clear(buf)
			buf = grown
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			clear(buf)
			return nil, err
		}
	}
}
