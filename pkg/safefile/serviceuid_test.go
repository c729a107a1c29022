package safefile

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

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
