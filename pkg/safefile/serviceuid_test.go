package safefile

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
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

// TestAttackServiceUserFromTheDirectory (rvkey, review of 78b7166): built
// with cgo (`go build`, scripts/demo.sh), user.Lookup asked NSS, so on a
// host joined to a directory (sssd, LDAP) with no local segmesh user, a
// directory user named segmesh became the service user a root process
// trusts. The test runs TestServiceUIDIsTheExactName again with NSS
// answering from another user database (nss_wrapper, where installed: a
// segmesh of uid 4321): serviceUID must still give /etc/passwd's. On main
// it gave 4321.
func TestAttackServiceUserFromTheDirectory(t *testing.T) {
	if os.Getenv("RVKEY_NSS_CHILD") != "" {
		t.Skip("the child runs TestServiceUIDIsTheExactName only")
	}
	libs, _ := filepath.Glob("/usr/lib/*/libnss_wrapper.so")
	libs2, _ := filepath.Glob("/usr/lib*/libnss_wrapper.so")
	if libs = append(libs, libs2...); len(libs) == 0 {
		t.Skip("nss_wrapper (libnss-wrapper) not installed")
	}
	dir := t.TempDir()
	pw, gr := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	if err := os.WriteFile(pw, []byte("root:x:0:0:root:/root:/bin/sh\nsegmesh:x:4321:4321:a directory user:/:/bin/false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gr, []byte("root:x:0:\nsegmesh:x:4321:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestServiceUIDIsTheExactName$", "-test.v")
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+libs[0], "NSS_WRAPPER_PASSWD="+pw, "NSS_WRAPPER_GROUP="+gr, "RVKEY_NSS_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestServiceUIDIsTheExactName") {
		t.Fatalf("with NSS answering a directory's segmesh: %v\n%s", err, out)
	}
}

// TestPasswdUID: the first line whose name is exactly the name; a user
// named like it, NIS's +name, a bad uid are not the service user.
func TestPasswdUID(t *testing.T) {
	for _, tt := range []struct {
		name, passwd string
		uid          int
		ok           bool
	}{
		{"the user", "root:x:0:0::/:/bin/sh\nsegmesh:x:999:995::/var/lib/segmesh:/usr/sbin/nologin\n", 999, true},
		{"the first of two", "segmesh:x:999:995::/:/bin/false\nsegmesh:x:1000:1000::/:/bin/sh\n", 999, true},
		{"none", "root:x:0:0::/:/bin/sh\n", 0, false},
		{"named like it", "segmesh2:x:1000:1000::/:/bin/sh\nSegmesh:x:1001:1001::/:/bin/sh\n xsegmesh:x:1002:1002::/:/bin/sh\n", 0, false},
		{"NIS's +segmesh", "+segmesh::::::\n", 0, false},
		{"a uid that is not a number", "segmesh:x:abc:995::/:/bin/false\n", 0, false},
		{"a line cut short", "segmesh:x\n", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "passwd")
			if err := os.WriteFile(p, []byte(tt.passwd), 0o644); err != nil {
				t.Fatal(err)
			}
			if uid, ok := passwdUID(p, ServiceUser); uid != tt.uid || ok != tt.ok {
				t.Errorf("passwdUID = %d, %v; want %d, %v", uid, ok, tt.uid, tt.ok)
			}
		})
	}
}
