package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageStepLeftover runs .ci/leftover.sh, which .ci/package.sh sources
// before it installs the .deb and the .rpm, against fake dpkg-query, dpkg and
// rpm under a temporary root. CI failed once on a machine where segmesh was
// already installed ("refusing to replace it"): a run stopped between the
// install and the removal leaves it there. What this script left (its
// marker, or on CI a checkout build) is removed; anything else (an admin's
// install, a release) is still refused, and nothing of it is removed.
func TestPackageStepLeftover(t *testing.T) {
	for _, tc := range []leftoverCase{
		{name: "nothing installed", wantOK: true},
		{name: "admin's release, not CI", deb: "1.4.0-1", files: true, wantOutput: "refusing to replace it"},
		{name: "admin's release on CI", deb: "1.4.0-1", ci: true, files: true, wantOutput: "dpkg: 1.4.0-1"},
		{name: "checkout build, not CI, no marker", deb: "0.1.0~git36e56ec9e618-1", files: true, wantOutput: "no marker"},
		{name: "checkout build on CI", deb: "0.1.0~git36e56ec9e618-1", ci: true, files: true, wantOK: true, wantCalls: "dpkg --purge segmesh\n"},
		{name: "marker naming the release it installed, SEGMESH_VERSION", deb: "1.4.0-1", marker: "1.4.0-1", files: true, wantOK: true, wantCalls: "dpkg --purge segmesh\n"},
		{name: "rpm left by the script", rpm: "0.1.0~git36e56ec9e618", marker: "0.1.0~git36e56ec9e618-1\n0.1.0~git36e56ec9e618", files: true, wantOK: true, wantCalls: "rpm -e segmesh\n"},
		{name: "rpm release on CI", rpm: "2.0.0", ci: true, files: true, wantOutput: "rpm: 2.0.0"},
		{name: "files without a package, no marker", files: true, wantOutput: "refusing"},
	} {
		t.Run(tc.name, func(t *testing.T) { runLeftover(t, tc) })
	}
}

// leftoverCase is one machine clear_leftover meets.
type leftoverCase struct {
	name       string
	deb, rpm   string // what the fakes report installed ("" none)
	marker     string // the marker's versions, one a line ("" no marker)
	ci         bool
	files      bool // /usr/bin/segmesh and /etc/segmesh under the root
	wantOK     bool
	wantCalls  string
	wantOutput string
}

// runLeftover sources .ci/leftover.sh under a temporary root with fake
// dpkg-query, dpkg and rpm, runs clear_leftover and checks what it did.
func runLeftover(t *testing.T, tc leftoverCase) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	script, err := filepath.Abs("../../.ci/leftover.sh")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	bin := filepath.Join(root, "fakebin")
	calls := filepath.Join(root, "calls")
	for _, d := range []string{bin, filepath.Join(root, "usr/bin"), filepath.Join(root, "var/lib")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	debLine := "exit 1"
	if tc.deb != "" {
		debLine = "echo 'installed " + tc.deb + "'"
	}
	rpmQuery := "echo 'package segmesh is not installed'; exit 1"
	if tc.rpm != "" {
		rpmQuery = "echo '" + tc.rpm + "'"
	}
	// The fakes remove the package's files as the real ones would.
	remove := `rm -rf "$SEGMESH_PACKAGE_ROOT/usr/bin/segmesh"`
	fakes := map[string]string{
		"dpkg-query": debLine,
		"dpkg":       `echo "dpkg $*" >>` + calls + `; ` + remove,
		"rpm":        `case "$1" in -q) ` + rpmQuery + ` ;; *) echo "rpm $*" >>` + calls + `; ` + remove + ` ;; esac`,
	}
	for name, body := range fakes {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if tc.files {
		if err := os.WriteFile(filepath.Join(root, "usr/bin/segmesh"), []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, "etc/segmesh"), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	marker := filepath.Join(root, "var/lib/segmesh-package-step")
	if tc.marker != "" {
		if err := os.WriteFile(marker, []byte(tc.marker+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", "-c", `set -euo pipefail; . "$0"; clear_leftover; echo PROCEED`, script)
	env := []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "SEGMESH_PACKAGE_ROOT=" + root}
	if tc.ci {
		env = append(env, "CI=true")
	}
	cmd.Env = env
	out, _ := cmd.CombinedOutput()
	proceeded := strings.Contains(string(out), "PROCEED")
	if proceeded != tc.wantOK {
		t.Fatalf("proceeded = %v, want %v; output:\n%s", proceeded, tc.wantOK, out)
	}
	if !strings.Contains(string(out), tc.wantOutput) {
		t.Errorf("output lacks %q:\n%s", tc.wantOutput, out)
	}
	got, _ := os.ReadFile(calls)
	if string(got) != tc.wantCalls {
		t.Errorf("calls = %q, want %q", got, tc.wantCalls)
	}
	// A cleared leftover takes its configuration with it; a refused
	// install keeps every file.
	if tc.files {
		_, err := os.Stat(filepath.Join(root, "etc/segmesh"))
		if removed := os.IsNotExist(err); removed != tc.wantOK {
			t.Errorf("/etc/segmesh removed = %v, want %v", removed, tc.wantOK)
		}
	}
}
