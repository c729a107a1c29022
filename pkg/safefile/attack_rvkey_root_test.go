package safefile

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

// TestAttackRootOwnerRule (rvkey, review of 78b7166): a process run as root
// trusts root and the service user segmesh only. Attempts to have it trust
// another owner: the machine has no segmesh user (the uid a package would
// have given it, now anyone's), a user other than the service user, and a
// process that is not root trusting the service user's files (root's
// exception leaking to an admin's own `segmesh config check`). Each is
// refused; held on main.
func TestAttackRootOwnerRule(t *testing.T) {
	if runtime.GOOS == "windows" || os.Geteuid() != 0 {
		t.Skip("giving a file another owner needs root (and modes)")
	}
	const service, other = 4242, 54321
	for _, tt := range []struct {
		name        string
		proc, owner int
		hasService  bool
		want        string // "" accepted
	}{
		{"root, no segmesh user on the machine: the uid it would have", 0, service, false, "neither root nor segmesh's service user segmesh (none on this machine)"},
		{"root, no segmesh user on the machine: another user's", 0, other, false, "is owned by user 54321"},
		{"root: a user who is not the service user", 0, other, true, "is owned by user 54321, neither root nor segmesh's service user segmesh (4242)"},
		{"not root: the service user's file", other + 1, service, true, "is owned by user 4242, neither this process's user"},
		{"held: root, the service user's", 0, service, true, ""},
	} {
		for name, check := range map[string]func(string, os.FileInfo) error{"CheckPrivate": CheckPrivate, "CheckReplaceable": CheckReplaceable} {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				old, oldSvc := euid, serviceUID
				euid = func() int { return tt.proc }
				serviceUID = func() (int, bool) { return service, tt.hasService }
				t.Cleanup(func() { euid, serviceUID = old, oldSvc })
				p := safefiletest.Tree{FileOwner: tt.owner}.Make(t, "d", "secret", []byte("k"))
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				err = check(p, fi)
				if tt.want == "" {
					if err != nil {
						t.Fatalf("%s = %v; want nil", name, err)
					}
					return
				}
				if e, ok := err.(*ExposedError); !ok || !strings.Contains(e.Error(), tt.want) {
					t.Fatalf("%s = %v; want %q", name, err, tt.want)
				}
			})
		}
	}
}

// TestServiceUIDIsTheExactName (rvkey, review of 78b7166): the service
// user is looked up by its exact name in /etc/passwd (the binary is built
// without cgo, so no directory service answers), never a user named like
// it (segmesh2, Segmesh, +segmesh).
func TestServiceUIDIsTheExactName(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /etc/passwd")
	}
	f, err := os.Open("/etc/passwd")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	want, wantOK := 0, false
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if fs := strings.Split(sc.Text(), ":"); len(fs) > 2 && fs[0] == ServiceUser && !wantOK {
			want, err = strconv.Atoi(fs[2])
			wantOK = err == nil
		}
	}
	got, ok := serviceUID()
	if ok != wantOK || got != want {
		t.Fatalf("serviceUID() = %d, %v; /etc/passwd's %q is %d, %v", got, ok, ServiceUser, want, wantOK)
	}
}
