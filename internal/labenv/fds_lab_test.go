//go:build lab

package labenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDaemonsDropCallersFDs: a descriptor lab.sh is handed (the lock fd of
// `flock /tmp/segmesh-lab.lock lab.sh ...`) is not inherited by the daemons
// it starts. It was: every daemon held the caller's lock until `down`, and
// every other `flock` user of the lab waited forever.
func TestDaemonsDropCallersFDs(t *testing.T) {
	lab := Up(t)
	held, err := os.Create(filepath.Join(t.TempDir(), "caller.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	runWith := func(args ...string) {
		t.Helper()
		cmd := exec.Command(lab.Script, args...)
		cmd.ExtraFiles = []*os.File{held} // fd 3, as flock(1) passes its lock
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("lab.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// The CRL server is restarted by "fault cdp off": a daemon started by a
	// lab.sh that was handed fd 3.
	runWith("fault", "cdp", "on")
	runWith("fault", "cdp", "off")
	pidFile, err := os.ReadFile(filepath.Join(lab.Dir, "run", "cdp.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.Fields(string(pidFile))[0])
	if err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		target, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "fd", fd.Name()))
		if target == held.Name() {
			t.Fatalf("the CRL server (pid %d) holds the caller's fd %s -> %s", pid, fd.Name(), target)
		}
	}
}
