// Command package builds segmesh's .deb and .rpm from a linux binary with
// goreleaser's nfpm used as a Go library (nothing to install; the same code
// path for both formats), from nfpm.yaml beside it: the binary, the hardened
// systemd unit segmesh.service, the maintainer scripts (service user,
// config init on first install), the man page written from the CLI's own
// help (manpage.go), and the docs.
//
//	go run ./deploy/package -bin dist/linux-amd64/segmesh -arch amd64 -version 0.1.0 -out dist
//
// .ci/package.sh builds, installs, checks (systemd-analyze verify, lintian,
// config check) and removes the .deb on the CI machine.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

func main() {
	bin := flag.String("bin", "", "the linux segmesh binary to package")
	arch := flag.String("arch", "amd64", "GOARCH of the binary: amd64 or arm64")
	version := flag.String("version", "0.1.0", "package version (starts with a digit)")
	out := flag.String("out", "dist", "directory for the packages")
	formats := flag.String("formats", "deb,rpm", "comma-separated: deb, rpm")
	flag.Parse()
	paths, err := build(options{Binary: *bin, Arch: *arch, Version: *version, Out: *out, Formats: strings.Split(*formats, ",")})
	if err != nil {
		fmt.Fprintf(os.Stderr, "package: %v\n", err)
		os.Exit(1)
	}
	for _, p := range paths {
		fmt.Println(p)
	}
}

// options are build's inputs.
type options struct {
	// Binary is the linux segmesh binary; Arch its GOARCH.
	Binary, Arch string
	// Version is the package version.
	Version string
	// Out is where the packages are written.
	Out string
	// Formats are nfpm packager names (deb, rpm).
	Formats []string
	// Date is the changelog entry's date (the build time when zero).
	Date time.Time
	// Dir is the folder holding nfpm.yaml (default: this source folder,
	// found from the working directory: the repository root or deploy/package).
	Dir string
}

// build writes one package per format and returns their paths.
func build(o options) ([]string, error) {
	if o.Binary == "" {
		return nil, fmt.Errorf("-bin is required: build it with GOOS=linux GOARCH=%s CGO_ENABLED=0 go build -trimpath -ldflags=-s\\ -w ./cmd/segmesh", o.Arch)
	}
	if o.Arch != "amd64" && o.Arch != "arm64" {
		return nil, fmt.Errorf("-arch %q: segmesh is packaged for amd64 and arm64", o.Arch)
	}
	if o.Version == "" || o.Version[0] < '0' || o.Version[0] > '9' {
		return nil, fmt.Errorf("-version %q: a package version starts with a digit (0.1.0)", o.Version)
	}
	dir, err := sourceDir(o.Dir)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "..", "..")
	binary, err := filepath.Abs(o.Binary)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	tmp, err := os.MkdirTemp("", "segmesh-package-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	man := filepath.Join(tmp, "segmesh.8.gz")
	if err := os.WriteFile(man, gz(manPage(o.Version)), 0o644); err != nil {
		return nil, err
	}
	changelog := filepath.Join(tmp, "changelog.Debian.gz")
	if err := os.WriteFile(changelog, gz(debianChangelog(o.Version, o.Date)), 0o644); err != nil {
		return nil, err
	}
	env := map[string]string{
		"ARCH": o.Arch, "VERSION": o.Version, "BINARY": binary, "MANPAGE": man, "CHANGELOG": changelog,
		"README": filepath.Join(root, "README.md"), "OPERATIONS": filepath.Join(root, "docs", "operations.md"),
	}
	cfg, err := nfpm.ParseFileWithEnvMapping(filepath.Join(dir, "nfpm.yaml"), func(k string) string { return env[k] })
	if err != nil {
		return nil, fmt.Errorf("nfpm.yaml: %w", err)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	// nfpm reads relative sources from the working directory.
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return nil, err
	}
	if err := os.Chdir(dir); err != nil {
		return nil, err
	}
	defer func() { _ = os.Chdir(wd) }()
	var paths []string
	for _, format := range o.Formats {
		p, err := packageOne(cfg, format, out)
		if err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// packageOne writes cfg as format into out and returns the file's path.
func packageOne(cfg nfpm.Config, format, out string) (string, error) {
	info, err := cfg.Get(format)
	if err != nil {
		return "", fmt.Errorf("%s: %w", format, err)
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", fmt.Errorf("%s: %w", format, err)
	}
	pkger, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	path := filepath.Join(out, pkger.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := pkger.Package(info, f); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("%s: %w", format, err)
	}
	return path, f.Close()
}

// sourceDir returns the folder holding nfpm.yaml.
func sourceDir(dir string) (string, error) {
	candidates := []string{dir}
	if dir == "" {
		candidates = []string{".", filepath.Join("deploy", "package")}
	}
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, "nfpm.yaml")); err == nil {
			return filepath.Abs(c)
		}
	}
	return "", fmt.Errorf("no nfpm.yaml in %v: run from the repository root", candidates)
}

// debianChangelog is the one-entry Debian changelog Policy 12.7 asks of a
// package with a /usr/share/doc directory; the history itself is git's.
func debianChangelog(version string, date time.Time) []byte {
	if date.IsZero() {
		date = time.Now()
	}
	return []byte(fmt.Sprintf("segmesh (%s-1) unstable; urgency=medium\n\n"+
		"  * Built from the segmesh repository; its git log holds the changes.\n\n"+
		" -- segmesh maintainers <segmesh@example.com>  %s\n", version, date.UTC().Format(time.RFC1123Z)))
}
