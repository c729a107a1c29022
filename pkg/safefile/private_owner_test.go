package safefile

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

// TestCheckPrivateOwners: a secret file or its directory owned by a user
// other than the process's and root is refused. A process run as root
// accepts root's and the service user's (an admin's `sudo segmesh config
// check` of the files the packages give segmesh), not another user's: on
// main it accepted any owner, and a 0600 key owned by an unprivileged user,
// who reads and rewrites it at will, served a gateway run as root (ikey,
// session 10; sshd's StrictModes likewise wants root or the user). The
// process's user is set through euid, the service user through
// serviceUID; giving files owners needs root.
func TestCheckPrivateOwners(t *testing.T) {
	if runtime.GOOS == "windows" || os.Geteuid() != 0 {
		t.Skip("giving a file another owner needs root (and modes)")
	}
	const service, other = 4242, 54321
	for _, tt := range []struct {
		name               string
		proc, file, dirOwn int
		noService          bool   // the machine has no segmesh user
		want               string // "" accepted
	}{
		{"the file and directory the process's user's", service, service, service, false, ""},
		{"the file root's", service, 0, service, false, ""},
		{"the file another user's", service, other, service, false, "is owned by user 54321"},
		{"the directory another user's", service, service, other, false, "(the directory holding"},
		{"run as root: another user's file", 0, other, 0, false, "is owned by user 54321, neither root nor segmesh's service user"},
		{"run as root: another user's directory", 0, 0, other, false, "(the directory holding"},
		{"run as root: the service user's file and directory", 0, service, service, false, ""},
		{"run as root: root's", 0, 0, 0, false, ""},
		// rvkey (review of 78b7166): no other owner through the service user's rule.
		{"run as root, no segmesh user on the machine: the uid it would have", 0, service, 0, true, "neither root nor segmesh's service user segmesh (none on this machine)"},
		{"run as root, no segmesh user on the machine: another user's", 0, other, 0, true, "is owned by user 54321"},
		{"not root: the service user's file (root's exception only)", other + 1, service, other + 1, false, "is owned by user 4242, neither this process's user"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			old, oldSvc := euid, serviceUID
			euid = func() int { return tt.proc }
			serviceUID = func() (int, bool) { return service, !tt.noService }
			t.Cleanup(func() { euid, serviceUID = old, oldSvc })
			p := safefiletest.Tree{FileOwner: tt.file, DirOwner: tt.dirOwn}.Make(t, "d", "secret", []byte("k"))
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckPrivate(p, fi)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckPrivate = %v; want nil", err)
				}
				return
			}
			e, ok := err.(*ExposedError)
			if !ok || !strings.Contains(e.Error(), tt.want) || !strings.Contains(e.Fix, "chown") {
				t.Fatalf("CheckPrivate = %v; want %q and a chown fix", err, tt.want)
			}
		})
	}
}

// TestCheckReplaceableOwners: a trusted file, the directory holding it or
// a directory above it owned by a user other than the process's and root
// is refused (that user can rewrite or replace it), also on a read-only
// mount (it may bind theirs). A process run as root accepts root's and
// the service user's only (on main it accepted any owner: ikey, session
// 10), and when the machine has no service user, root's only.
func TestCheckReplaceableOwners(t *testing.T) {
	if runtime.GOOS == "windows" || os.Geteuid() != 0 {
		t.Skip("giving a file another owner needs root (and modes)")
	}
	const service, other = 4242, 54321
	for _, tt := range []struct {
		name                      string
		proc, file, dirOwn, above int
		readOnly                  bool
		want                      string // "" accepted
	}{
		{"all the process's user's", service, service, service, service, false, ""},
		{"the file root's, world-readable", service, 0, service, 0, false, ""},
		{"the file another user's", service, other, service, service, false, "is owned by user 54321"},
		{"the directory another user's", service, service, other, service, false, "(the directory holding"},
		{"a directory above another user's", service, service, service, other, false, "(a directory above"},
		{"run as root: another user's", 0, other, other, other, false, "is owned by user 54321, neither root nor segmesh's service user"},
		{"run as root: a directory above another user's", 0, 0, 0, other, false, "(a directory above"},
		{"run as root: the service user's", 0, service, service, 0, false, ""},
		{"another user's on a read-only mount (a bind mount of their files)", service, other, other, service, true, "is owned by user 54321"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			old, oldRO, oldSvc := euid, readOnlyFS, serviceUID
			euid = func() int { return tt.proc }
			serviceUID = func() (int, bool) { return service, true }
			t.Cleanup(func() { euid, readOnlyFS, serviceUID = old, oldRO, oldSvc })
			p := safefiletest.Tree{File: 0o644, Dir: 0o755, FileOwner: tt.file, DirOwner: tt.dirOwn, ParentOwner: tt.above}.Make(t, "d", "ca.pem", []byte("c"))
			dir := filepath.Dir(p)
			readOnlyFS = func(p string) bool { return tt.readOnly && (p == dir || strings.HasPrefix(p, dir+"/")) }
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckReplaceable(p, fi)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckReplaceable = %v; want nil", err)
				}
				return
			}
			e, ok := err.(*ExposedError)
			if !ok || !strings.Contains(e.Error(), tt.want) || !strings.Contains(e.Fix, "chown") {
				t.Fatalf("CheckReplaceable = %v; want %q and a chown fix", err, tt.want)
			}
		})
	}
}
