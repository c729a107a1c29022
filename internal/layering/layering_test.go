package layering

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

const module = "github.com/segmesh/segmesh"

// knownViolations are imports that break the layering today, each with the
// way out; the test fails when a new one appears and when one of these is
// gone (then delete its line).
var knownViolations = []string{
	// Whole-binary lab tests that run suite.Run in process; they belong in
	// internal/suite or test/.
	"pkg/admin imports internal/suite (from tests): imports a layer above its own (cmd → internal → services → pkg)",
	"services/edge imports internal/suite (from tests): imports a layer above its own (cmd → internal → services → pkg)",
}

// knownLongFiles are files over 600 lines today; each may shrink, none may
// grow past its figure, and no other file may pass 600.
var knownLongFiles = map[string]int{
	"pkg/certmap/mapper_test.go":      650,
	"pkg/crl/refresh/refresh_test.go": 647,
	"pkg/negotiate/builder_test.go":   644,
	"pkg/s4u/s4u_test.go":             634,
	"services/edge/lab_test.go":       616,
}

// listed caches the repository's packages per build-tag set: each
// `go list ./...` takes seconds.
var listed sync.Map

func repoPackages(t testing.TB, tags []string) []Package {
	t.Helper()
	key := strings.Join(tags, ",")
	if v, ok := listed.Load(key); ok {
		return v.([]Package)
	}
	pkgs, err := List(repoRoot(t), tags, "./...")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	listed.Store(key, pkgs)
	return pkgs
}

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestRepositoryLayering runs Check on the repository with and without the
// lab build tag, test files included.
func TestRepositoryLayering(t *testing.T) {
	got := map[string]bool{}
	for _, tags := range [][]string{nil, {"lab"}} {
		for _, v := range Check(module, repoPackages(t, tags)) {
			got[v] = true
		}
	}
	for v := range got {
		if !slices.Contains(knownViolations, v) {
			t.Errorf("layering: %s", v)
		}
	}
	for _, v := range knownViolations {
		if !got[v] {
			t.Errorf("fixed, delete it from knownViolations: %s", v)
		}
	}
}

// TestRepositoryFileSizes: no source file passes 600 lines (generated code
// aside), except the known ones, which may not grow.
func TestRepositoryFileSizes(t *testing.T) {
	root := repoRoot(t)
	seen := map[string]bool{}
	for _, tags := range [][]string{nil, {"lab"}} {
		long, err := LongFiles(root, repoPackages(t, tags), 600)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range long {
			if seen[l] {
				continue
			}
			seen[l] = true
			path, _, _ := strings.Cut(l, ":")
			var n int
			if _, err := fmt.Sscanf(l[len(path)+2:], "%d lines", &n); err != nil {
				t.Fatal(err)
			}
			if ceiling, ok := knownLongFiles[path]; !ok || n > ceiling {
				t.Errorf("%s (limit 600; split it by concern)", l)
			}
		}
	}
}

// TestCheckFailsOnAWrongImport writes a small module with the repository's
// layout and deliberately wrong imports, lists it with the go command as
// the repository is listed, and expects each wrong import named.
func TestCheckFailsOnAWrongImport(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":                        "module " + module + "\n\ngo 1.26\n",
		"pkg/a/a.go":                    "package a\n",
		"pkg/b/b.go":                    "package b\n",
		"pkg/b/b_test.go":               "package b\n\nimport _ \"" + module + "/services/edge\"\n",
		"services/edge/edge.go":         "package edge\n\nimport _ \"" + module + "/services/ticket\"\n",
		"services/ticket/ticket.go":     "package ticket\n\nimport _ \"" + module + "/pkg/a\"\n",
		"services/crl/crl.go":           "package crl\n\nimport _ \"" + module + "/internal/suite\"\n",
		"internal/suite/suite.go":       "package suite\n\nimport _ \"" + module + "/services/crl\"\n",
		"internal/testpki/testpki.go":   "package testpki\n",
		"services/identity/identity.go": "package identity\n\nimport _ \"" + module + "/internal/testpki\"\n",
		"cmd/x/main.go":                 "package main\n\nimport _ \"" + module + "/internal/suite\"\n\nfunc main() {}\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pkgs, err := List(dir, nil, "./...")
	if err != nil {
		t.Fatal(err)
	}
	got := Check(module, pkgs)
	want := []string{
		"pkg/b imports services/edge (from tests): imports a layer above its own (cmd → internal → services → pkg)",
		"services/crl imports internal/suite: imports a layer above its own (cmd → internal → services → pkg)",
		"services/edge imports services/ticket: a role imports another role; call it through its gRPC client",
		"services/identity imports internal/testpki: test support imported by non-test code",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Check found\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	long, err := LongFiles(dir, pkgs, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(long, "pkg/b/b_test.go: 3 lines") || slices.Contains(long, "pkg/a/a.go: 1 lines") {
		t.Fatalf("LongFiles(2) = %v", long)
	}
}
