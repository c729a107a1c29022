// Package safefile reads the files an admin names in the configuration (a
// trust store, a console chain, gRPC certificates and keys, the admin token,
// the session-ticket key file) without trusting what the name points at.
//
// `segmesh config check` and every reload read these files while the
// gateway serves. A plain os.Open of a FIFO blocks until a writer comes,
// and os.ReadFile of a link to /dev/zero or of a multi-gigabyte file reads
// without end: either hangs the reload or takes the process's memory
// (attacker review rvconf, session 7). Checking the path first is not
// enough, since the file can be swapped between the check and the read.
// So a file is opened without blocking, checked on the open descriptor
// (a regular file only) and read with a bound. The standard library has no
// such call; it is written once here for every reader of such a file.
//
// What another local user could change is refused too: a secret file
// (CheckPrivate: the secrets key, the session ticket keys) when others may
// read it or replace it, a file the gateway trusts (CheckReplaceable,
// ReadTrusted: config.json, the trust store, the console chain, the CA
// bundles) when others may replace it. Both walk every directory above
// the file up to /, as sshd's StrictModes does for authorized_keys, not
// only the one holding it: whoever can write /srv can rename /srv/segmesh
// away and put a directory of theirs, with a file of theirs, in its place.
// The walk refuses no usual layout: /, /etc, /var/lib and /home/<user>
// are written by root or their user only; /tmp and /var/tmp are sticky,
// so an entry in them is judged by its owner (others cannot rename it);
// and a directory on a read-only mount (statfs ST_RDONLY: Kubernetes
// ConfigMap and Secret volumes, whose own directory is an emptyDir of mode
// 0777) passes whatever its mode, as no entry can be added, renamed or
// removed through that mount; its owner and the file's own mode and owner
// are still checked, as a read-only bind mount shows files others may
// write through its source (kubelet's are root's, never group- or
// other-writable). Every symbolic link on the way, at any place in the
// path, has the directory holding it checked too. A group-
// writable ancestor (Debian's old /usr/local, 2775 root:staff) is refused:
// its group can replace the file.
//
// A file read as public (Read, ReadTrusted) that holds a private key (a
// combined certificate-and-key PEM, its armor in any form, or a PFX
// exported with its key) is held to CheckPrivate as well:
// a key every local user may read is a leaked key, whichever file it is in.
//
// A process run as root accepts the owners root and ServiceUser (the user
// the packages run segmesh as, from /etc/passwd only, never a directory's), as sshd's StrictModes accepts root or the
// user: an admin's `sudo segmesh config check` reads the service user's
// own files, and a gateway run as root (not how the packages or deploy/k8s
// run it) refuses a file another user owns, who can rewrite it whatever
// its mode (it trusted any owner until session 10).
// ACLs are not read: a named-user write grant shows as group write in the
// mode and is refused; a named-user read grant shows as group read.
package safefile

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrNotRegular is wrapped by the errors of Open and Read when the path
// names a FIFO, a device, a directory or a socket.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is wrapped by Read's error when the file holds more than the
// bound.
var ErrTooLarge = errors.New("larger than the bound for this file")

// Open opens path for reading without blocking and returns the file with
// its FileInfo only when the open descriptor is a regular file (its error
// then reads "<path> is not a regular file"). The caller closes the file.
func Open(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, nil, fmt.Errorf("%s is %w", path, ErrNotRegular)
	}
	return f, fi, nil
}

// Read returns the content of the regular file at path when it holds at
// most limit bytes; a larger one is an error wrapping ErrTooLarge, read no
// further than limit+1 bytes.
func Read(path string, limit int64) ([]byte, error) {
	return ReadChecked(path, limit, nil)
}
