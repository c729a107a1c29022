package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// ErrNotDir is wrapped by CheckDir's error when the path names something
// other than a directory.
var ErrNotDir = errors.New("not a directory")

// CheckDir reports whether another local user could add, replace or
// remove what the directory path holds, and returns an *ExposedError
// saying what and the chmod/chown that fixes it. It is for a directory
// whose content decides what the gateway trusts after a restart (the crl
// role's state directory: whoever writes it deletes a floor, or plants an
// older CRL's record, and a revoked certificate is good again). Refused:
//   - path, or anything under it (kept/, every record), that others may
//     write, or its group may write unless the process is in that group;
//   - path, or anything under it, owned by a user trustedOwner does not
//     accept (below); a symbolic link under it (the gateway makes none
//     there: whoever made it chooses what a start reads);
//   - a directory above path, as CheckReplaceable checks a file's (up to /,
//     every link on the way; a sticky one judges path by its owner; a
//     read-only mount passes);
//   - when path does not exist yet (a first start: the role makes it
//     0700), the directory that would hold it, by the same rules, and a
//     sticky one others may write (/tmp): another user could make path
//     there first, as theirs.
//
// The sticky bit does not make path itself pass: others could still add
// entries to it. A group the process is in passes where CheckReplaceable
// refuses any group write, for path and what it holds only: Kubernetes'
// fsGroup puts every container of the pod in the volume's group and makes
// every directory of the volume g+rwx,setgid and every file g+rw (kubelet's
// SetVolumeOwnership), and that group's members are the pod's own
// processes. So it passes only while /etc/group and /etc/passwd put no
// other user in that group (othersInGroup), and the entry has no POSIX
// access ACL (its group bits would be the ACL's mask). A path naming ".."
// is refused. Owners are judged as CheckReplaceable judges them
// (trustedOwner): a process run as root trusts root and ServiceUser, so
// that `sudo segmesh config check` passes the packages' directory. On
// Windows it checks nothing.
func CheckDir(path string) error {
	if !checksOwners {
		return nil
	}
	if slices.Contains(strings.Split(filepath.ToSlash(path), "/"), "..") {
		// The kernel resolves link/.. at the link's target; checkDirs and
		// checkToMake judge the directories above on the cleaned text: they
		// would check another directory than the one used (rvstate).
		return &ExposedError{Path: path, Reason: `names "..": after a symbolic link it leads where the text does not say, and the directories above could not be checked`,
			Fix: "name the directory without \"..\" (" + filepath.Clean(path) + " if that is the one meant)"}
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		// Not made yet, or a file in its way (checkToMake names it).
		return checkToMake(path)
	case err != nil:
		return &ExposedError{Path: path, Reason: "cannot be checked: " + err.Error(), Fix: "make " + path + " and the directories above it readable by segmesh's user"}
	case !fi.IsDir():
		return fmt.Errorf("%s is %w", path, ErrNotDir)
	}
	if err := checkHeld(path, fi); err != nil {
		return err
	}
	if err := checkDirs(path); err != nil {
		return err
	}
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil // a temporary file renamed since it was listed
		case err != nil:
			return &ExposedError{Path: p, Reason: "cannot be checked: " + err.Error(), Fix: "make " + p + " readable by segmesh's user"}
		case p == path:
			return nil // checked above
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return &ExposedError{Path: p, Reason: "is a symbolic link in " + path + ", which holds none of the gateway's own: whoever made it chooses what a start reads",
				Fix: "remove " + p}
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return &ExposedError{Path: p, Reason: "cannot be checked: " + err.Error(), Fix: "make " + p + " readable by segmesh's user"}
		}
		return checkHeld(p, fi)
	})
}

// checkToMake checks where the missing directory path would be made: the
// nearest directory above it that exists, as a directory above path
// (checkDirs), and refused when it is sticky and others may add entries
// to it (another user could make path first).
func checkToMake(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return &ExposedError{Path: path, Reason: "cannot be checked: " + err.Error(), Fix: "name the directory by its absolute path"}
	}
	missing := abs
	for {
		parent := filepath.Dir(missing)
		fi, err := os.Stat(parent)
		switch {
		case errors.Is(err, fs.ErrNotExist) && parent != missing:
			missing = parent
			continue
		case err != nil:
			return &ExposedError{Path: parent, Reason: "cannot be checked: " + err.Error(), Fix: "make the directories holding " + path + " readable by segmesh's user"}
		case !fi.IsDir():
			return fmt.Errorf("%s, on the way to %s, is %w", parent, path, ErrNotDir)
		}
		if fi.Mode()&os.ModeSticky != 0 && fi.Mode().Perm()&0o022 != 0 {
			return &ExposedError{Path: path, Reason: fmt.Sprintf("does not exist yet, and %s, where it would be made, lets others add entries (mode %s): another user could create it first, as theirs", parent, modeText(fi.Mode())),
				Fix: "mkdir -m 0700 " + path + " as the user segmesh runs as, or name a directory in one only that user writes"}
		}
		return checkDirs(missing)
	}
}

// checkHeld checks the mode and owner of p, the directory CheckDir checks
// or an entry under it (fi its FileInfo): others may not write it, its group
// only when the process is in that group, and its owner is one
// trustedOwner accepts (root or the process's user; for a process run as
// root, root or ServiceUser).
func checkHeld(p string, fi os.FileInfo) error {
	if !checksOwners {
		return nil
	}
	perm := fi.Mode().Perm()
	if perm&0o002 != 0 || perm&0o020 != 0 && !inGroupOf(fi) {
		return &ExposedError{Path: p, Reason: fmt.Sprintf("has mode %s: group or others may write it, and so replace or remove what it holds", modeText(fi.Mode())),
			Fix: "chmod go-w " + p}
	}
	if perm&0o020 != 0 {
		// The group rule passed it: the group is trusted as the pod's own
		// (fsGroup) only when no other user is known to be in it (rvstate).
		gid, _ := groupOf(fi)
		if others := othersInGroup(gid); len(others) > 0 {
			return &ExposedError{Path: p, Reason: fmt.Sprintf("has mode %s, and its group %d has users besides this process's (%s): they may write it, and so replace or remove what it holds", modeText(fi.Mode()), gid, strings.Join(others, ", ")),
				Fix: "chmod g-w " + p}
		}
		// With an access ACL the group bits are the list's mask: users and
		// groups it names may write.
		switch acl, err := hasAccessACL(p); {
		case err != nil:
			return &ExposedError{Path: p, Reason: "cannot be checked: its access control list: " + err.Error(), Fix: "chmod g-w " + p}
		case acl:
			return &ExposedError{Path: p, Reason: fmt.Sprintf("has mode %s and an access control list: the group bits are the list's mask, so the users and groups it names may write it, and so replace or remove what it holds", modeText(fi.Mode())),
				Fix: "setfacl -b " + p + " (or chmod g-w " + p + ")"}
		}
	}
	return ownerError(p, fi, "change what it holds")
}

// inGroupOf reports whether the process is in the group owning the file
// fi describes (its effective group or a supplementary one).
func inGroupOf(fi os.FileInfo) bool {
	gid, ok := groupOf(fi)
	if !ok {
		return false
	}
	if gid == egid() {
		return true
	}
	groups, err := os.Getgroups()
	return err == nil && slices.Contains(groups, gid)
}

// etcGroup and etcPasswd are the files naming the members of a group
// (variables for the tests).
var etcGroup, etcPasswd = "/etc/group", "/etc/passwd"

// othersInGroup returns up to three users other than the process's that
// the machine's files put in the group gid: its members in /etc/group, or
// users whose primary group it is in /etc/passwd. A group the files do not
// name (Kubernetes' fsGroup of any gid, in an image without it) has none
// known; users only a directory service (NSS) names are not seen.
func othersInGroup(gid int) []string {
	me, passwd := "", readColonFile(etcPasswd)
	for _, f := range passwd { // name:x:uid:gid:...
		if len(f) > 3 && f[2] == strconv.Itoa(euid()) {
			me = f[0]
		}
	}
	var out []string
	add := func(name string) {
		if name != "" && name != me && !slices.Contains(out, name) && len(out) < 3 {
			out = append(out, name)
		}
	}
	for _, f := range passwd {
		if len(f) > 3 && f[3] == strconv.Itoa(gid) {
			add(f[0])
		}
	}
	for _, f := range readColonFile(etcGroup) { // name:x:gid:members
		if len(f) > 3 && f[2] == strconv.Itoa(gid) {
			for _, m := range strings.Split(f[3], ",") {
				add(strings.TrimSpace(m))
			}
		}
	}
	return out
}

// readColonFile returns the colon-separated fields of each line of the
// file path (/etc/passwd, /etc/group), bounded; none when it cannot be
// read.
func readColonFile(path string) [][]string {
	b, err := Read(path, 4<<20)
	if err != nil {
		return nil
	}
	var out [][]string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, strings.Split(line, ":"))
		}
	}
	return out
}

// egid is the process's effective group (a variable for the tests).
var egid = os.Getegid

// groupOf returns the group owning the file fi describes. It reads the
// Gid field of the system's stat structure by name, so that this one file
// builds on every platform (Windows has none: false).
func groupOf(fi os.FileInfo) (int, bool) {
	v := reflect.Indirect(reflect.ValueOf(fi.Sys()))
	if v.Kind() != reflect.Struct {
		return 0, false
	}
	g := v.FieldByName("Gid")
	if !g.IsValid() || !g.CanUint() {
		return 0, false
	}
	return int(g.Uint()), true
}

// modeText writes m's permission bits in octal with the setuid, setgid
// and sticky bits (1777, 2770), as chmod and ls -l users read them.
func modeText(m os.FileMode) string {
	n := uint32(m.Perm())
	for _, b := range []struct {
		mode os.FileMode
		bit  uint32
	}{{os.ModeSetuid, 0o4000}, {os.ModeSetgid, 0o2000}, {os.ModeSticky, 0o1000}} {
		if m&b.mode != 0 {
			n |= b.bit
		}
	}
	return fmt.Sprintf("%04o", n)
}
