package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUnitHardening: the unit carries each setting the package promises
// (own user, read-only system but the config directory, one capability,
// descriptors for held Pings, restart on failure, reload by SIGHUP).
func TestUnitHardening(t *testing.T) {
	data, err := os.ReadFile("segmesh.service")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{
		"User=segmesh", "Group=segmesh",
		"ExecStart=/usr/bin/segmesh run --config /etc/segmesh/config.json",
		"ExecReload=/bin/kill -HUP $MAINPID",
		"Restart=on-failure",
		"ProtectSystem=strict", "ReadWritePaths=/etc/segmesh", "StateDirectory=segmesh",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
		"NoNewPrivileges=yes", "LimitNOFILE=1048576", "ProtectHome=yes", "PrivateTmp=yes",
	} {
		if !lines[want] {
			t.Errorf("segmesh.service lacks %q", want)
		}
	}
}

// TestManPage: every command of the CLI's usage has a section holding its
// own -h text, and roff's control characters are escaped.
func TestManPage(t *testing.T) {
	page := string(manPage("1.2.3"))
	for _, want := range []string{
		".TH SEGMESH 8", ".SS run\n", ".SS config check\n", ".SS config init\n", ".SS diagnose\n",
		`\-\-roles`, "/etc/segmesh/config.json",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("man page lacks %q", want)
		}
	}
	for i, l := range strings.Split(page, "\n") {
		if strings.HasPrefix(l, "'") {
			t.Errorf("line %d starts with a quote (a roff control line): %q", i+1, l)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{`a\b`, `a\eb`}, {".x", `\&.x`}, {"--config", `\-\-config`}, {"a\n'b", "a\n\\&'b"},
	} {
		if got := roff(tc.in); got != tc.want {
			t.Errorf("roff(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz([]byte(page))))
	if err != nil {
		t.Fatal(err)
	}
	back, _ := io.ReadAll(zr)
	if string(back) != page || zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gz: round trip %v, name %q, time %v", string(back) == page, zr.Name, zr.ModTime)
	}
}

func TestDebianChangelog(t *testing.T) {
	got := string(debianChangelog("0.1.0", time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)))
	want := "segmesh (0.1.0-1) unstable; urgency=medium\n\n" +
		"  * Built from the segmesh repository; its git log holds the changes.\n\n" +
		" -- segmesh maintainers <segmesh@example.com>  Sat, 05 Dec 2026 09:00:00 +0000\n"
	if got != want {
		t.Errorf("changelog:\n%s\nwant:\n%s", got, want)
	}
}

func TestBuildRefusesBadOptions(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "segmesh")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    options
		want string
	}{
		{"no binary", options{Arch: "amd64", Version: "1.0"}, "-bin is required"},
		{"binary missing", options{Binary: bin + ".gone", Arch: "amd64", Version: "1.0"}, "binary:"},
		{"arch", options{Binary: bin, Arch: "386", Version: "1.0"}, `-arch "386"`},
		{"version", options{Binary: bin, Arch: "amd64", Version: "v1.0"}, "starts with a digit"},
		{"format", options{Binary: bin, Arch: "amd64", Version: "1.0", Formats: []string{"msi"}, Out: t.TempDir()}, "msi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("build: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestBuildDeb builds a .deb around a stand-in binary and reads it back
// with dpkg-deb: the files, their modes and the maintainer scripts.
func TestBuildDeb(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not installed (Debian's dpkg); .ci/package.sh installs the package itself")
	}
	bin := filepath.Join(t.TempDir(), "segmesh")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho segmesh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	paths, err := build(options{Binary: bin, Arch: "arm64", Version: "1.2.3", Out: out, Formats: []string{"deb", "rpm"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 || filepath.Base(paths[0]) != "segmesh_1.2.3-1_arm64.deb" || !strings.HasSuffix(paths[1], ".aarch64.rpm") {
		t.Fatalf("packages: %v", paths)
	}
	list, err := exec.Command("dpkg-deb", "-c", paths[0]).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb -c: %v\n%s", err, list)
	}
	for _, want := range []string{
		"-rwxr-xr-x root/root", "./usr/bin/segmesh",
		"-rw-r--r-- root/root", "./usr/lib/systemd/system/segmesh.service",
		"./usr/share/man/man8/segmesh.8.gz", "./usr/share/doc/segmesh/copyright",
		"./usr/share/doc/segmesh/changelog.Debian.gz", "./usr/share/lintian/overrides/segmesh",
	} {
		if !strings.Contains(string(list), want) {
			t.Errorf("package lacks %q:\n%s", want, list)
		}
	}
	info, err := exec.Command("dpkg-deb", "-I", paths[0]).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb -I: %v\n%s", err, info)
	}
	for _, want := range []string{"Architecture: arm64", "Version: 1.2.3-1", " postinst ", " prerm ", " postrm "} {
		if !strings.Contains(string(info), want) {
			t.Errorf("control lacks %q:\n%s", want, info)
		}
	}
}

// TestBuildRPM builds a .rpm around a stand-in binary and reads it back
// with Debian's rpm (rpm -qp): the files and directories it owns (rpm -e
// removes only those: an unowned /usr/share/doc/segmesh stayed behind,
// empty), their modes, the scriptlets and the architecture.
func TestBuildRPM(t *testing.T) {
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Skip("rpm not installed (Debian's rpm; .ci/run installs it)")
	}
	bin := filepath.Join(t.TempDir(), "segmesh")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho segmesh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	paths, err := build(options{Binary: bin, Arch: "amd64", Version: "1.2.3", Out: t.TempDir(), Formats: []string{"rpm"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 1 || filepath.Base(paths[0]) != "segmesh-1.2.3-1.x86_64.rpm" {
		t.Fatalf("packages: %v", paths)
	}
	rpm := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("rpm", append([]string{"-qp"}, append(args, paths[0])...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("rpm -qp %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	list := rpm("--qf", `[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]`)
	for _, want := range []string{
		"-rwxr-xr-x root:root /usr/bin/segmesh\n",
		"-rw-r--r-- root:root /usr/lib/systemd/system/segmesh.service\n",
		"-rw-r--r-- root:root /usr/share/man/man8/segmesh.8.gz\n",
		"drwxr-xr-x root:root /usr/share/doc/segmesh\n",
		"-rw-r--r-- root:root /usr/share/doc/segmesh/copyright\n",
		"-rw-r--r-- root:root /usr/share/doc/segmesh/operations.md\n",
	} {
		if !strings.Contains(list, want) {
			t.Errorf("package lacks %q:\n%s", want, list)
		}
	}
	for _, debOnly := range []string{"changelog.Debian.gz", "lintian"} {
		if strings.Contains(list, debOnly) {
			t.Errorf("the .rpm holds the .deb's %s:\n%s", debOnly, list)
		}
	}
	if got := rpm("--qf", "%{NAME} %{VERSION}-%{RELEASE} %{ARCH}"); got != "segmesh 1.2.3-1 x86_64" {
		t.Errorf("header: %q", got)
	}
	scripts := rpm("--scripts")
	for _, want := range []string{"postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet", "segmesh config init /etc/segmesh/config.json"} {
		if !strings.Contains(scripts, want) {
			t.Errorf("scriptlets lack %q:\n%s", want, scripts)
		}
	}
}
