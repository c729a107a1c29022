package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAttackPackageStepLeftover: the machines on which the package step
// must not remove an admin's segmesh. On main the marker named no version:
// any failure of the step after its install (lintian, config check) left
// it behind (the EXIT trap purged the package, not the marker), and every
// later run then purged whatever segmesh an admin had installed since, with
// /etc/segmesh and /var/lib/segmesh. And on CI the .deb's and the .rpm's
// versions were judged as one text, so a checkout .rpm cleared a release
// .deb beside it. Rows 1 to 4 failed on main (purged); the rest held.
func TestAttackPackageStepLeftover(t *testing.T) {
	for _, tc := range []leftoverCase{
		{name: "marker of a failed run, admin's release since", deb: "1.4.0-1", marker: "0.1.0~git36e56ec9e618-1", files: true, wantOutput: "refusing to replace it"},
		{name: "marker of a failed run, admin's release since, on CI", deb: "1.4.0-1", marker: "0.1.0~git36e56ec9e618-1", ci: true, files: true, wantOutput: "refusing to replace it"},
		{name: "on CI, release .deb beside a checkout .rpm", deb: "1.4.0-1", rpm: "0.1.0~git36e56ec9e618", ci: true, files: true, wantOutput: "dpkg: 1.4.0-1"},
		{name: "a version the marker holds as a prefix only", deb: "0.1.0~git36e56ec9e618-1", marker: "0.1.0~git36e56ec9e618", files: true, wantOutput: "refusing"},
		{name: "a release named like a snapshot, not CI", deb: "1.4.0~git20260101-1", files: true, wantOutput: "refusing"},
		{name: "both left by the script", deb: "0.1.0~git36e56ec9e618-1", rpm: "0.1.0~git36e56ec9e618", marker: "0.1.0~git36e56ec9e618-1\n0.1.0~git36e56ec9e618", files: true, wantOK: true, wantCalls: "dpkg --purge segmesh\nrpm -e segmesh\n"},
	} {
		t.Run(tc.name, func(t *testing.T) { runLeftover(t, tc) })
	}
}

// TestAttackPackageStepMarkerOutlivesItsInstall: a failed run's cleanup
// (the EXIT trap, after it purged the package) takes the marker with it;
// one that could not remove the package keeps it. On main the trap left
// the marker in both cases (unmark_if_gone did not exist).
func TestAttackPackageStepMarkerOutlivesItsInstall(t *testing.T) {
	script, err := filepath.Abs("../../.ci/leftover.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		stillThere bool // dpkg-query still reports segmesh after the purge
	}{
		{name: "purged"},
		{name: "purge failed", stillThere: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			bin := filepath.Join(root, "fakebin")
			if err := os.MkdirAll(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			query := "exit 1"
			if tc.stillThere {
				query = "echo 'half-configured 0.1.0~git36e56ec9e618-1'"
			}
			if err := os.WriteFile(filepath.Join(bin, "dpkg-query"), []byte("#!/bin/sh\n"+query+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("bash", "-c", `set -euo pipefail; . "$0"; mark_installing 0.1.0~git36e56ec9e618-1; unmark_if_gone`, script)
			cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "SEGMESH_PACKAGE_ROOT=" + root}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			_, err := os.Stat(filepath.Join(root, "var/lib/segmesh-package-step"))
			if kept := err == nil; kept != tc.stillThere {
				t.Errorf("marker kept = %v, want %v", kept, tc.stillThere)
			}
		})
	}
}

// TestAttackPackageStepLockDirectory: root opens the step's lock for
// writing; in a directory others may write (main used /run/lock, 1777)
// another local user puts a link there to a file root then truncates, or
// holds the lock so that no package step runs again. The lock's directory
// must be root's alone. Failed on main (no package_lock; the path was in
// package.sh, under /run/lock).
func TestAttackPackageStepLockDirectory(t *testing.T) {
	script, err := filepath.Abs("../../.ci/leftover.sh")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", "-c", `. "$0"; printf %s "$package_lock"`, script).Output()
	if err != nil {
		t.Fatal(err)
	}
	lock := string(out)
	if !strings.HasPrefix(lock, "/") {
		t.Fatalf("package_lock = %q, want an absolute path", lock)
	}
	fi, err := os.Stat(filepath.Dir(lock))
	if err != nil {
		t.Skipf("no %s on this machine: %v", filepath.Dir(lock), err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		t.Errorf("the lock %s is in a directory others may write (%v)", lock, fi.Mode())
	}
	pkg, err := os.ReadFile("../../.ci/package.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pkg), `exec 9>"$package_lock"`) {
		t.Error(".ci/package.sh does not take its lock at $package_lock")
	}
}
