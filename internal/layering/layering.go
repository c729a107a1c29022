package layering

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Package is what Check needs of one package from `go list -json`.
type Package struct {
	// ImportPath is the package's import path.
	ImportPath string
	// Dir is its directory.
	Dir string
	// GoFiles, TestGoFiles and XTestGoFiles are its source files (names in Dir).
	GoFiles, TestGoFiles, XTestGoFiles []string
	// Imports, TestImports and XTestImports are what those files import.
	Imports, TestImports, XTestImports []string
}

// List runs `go list -json` with tags in dir on patterns and returns the
// packages.
func List(dir string, tags []string, patterns ...string) ([]Package, error) {
	args := []string{"list", "-e", "-json=ImportPath,Dir,GoFiles,TestGoFiles,XTestGoFiles,Imports,TestImports,XTestImports"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, patterns...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("layering: go list: %w: %s", err, stderr.String())
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs, nil
		} else if err != nil {
			return nil, fmt.Errorf("layering: decode go list: %w", err)
		}
		pkgs = append(pkgs, p)
	}
}

// Layers, from the top: a package may import its own layer or one below.
const (
	layerTop      = iota // cmd, test, bench, deploy, docs: may import anything
	layerInternal        // internal: the binary's wiring (cli, suite, diagnose)
	layerServices        // services/<role>
	layerPkg             // pkg, proto and the test support packages
	layerOther           // outside the module
)

// testSupport are internal packages that hold only test helpers built on
// pkg (certificates, the lab's environment): pkg-level, but importable
// from tests (and the process-level test helpers under test/) only.
var testSupport = map[string]bool{"internal/testpki": true, "internal/labenv": true, "internal/testpoll": true, "internal/testlog": true, "internal/testmetric": true}

// testHarness are internal packages that run the binary's code for tests
// (internal/testenv: a whole site in one process): internal-level, and they
// may import test support.
var testHarness = map[string]bool{"internal/testenv": true}

func layerOf(module, path string) (layer int, rel string) {
	rel, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return layerOther, path
	}
	first, _, _ := strings.Cut(rel, "/")
	switch {
	case testSupport[rel]:
		return layerPkg, rel
	case first == "internal":
		return layerInternal, rel
	case first == "services":
		return layerServices, rel
	case first == "pkg" || first == "proto":
		return layerPkg, rel
	}
	return layerTop, rel
}

// role returns the role a services/<role>/... path belongs to, or "".
func role(rel string) string {
	parts := strings.SplitN(rel, "/", 3)
	if len(parts) >= 2 && parts[0] == "services" {
		return parts[1]
	}
	return ""
}

// Check returns every import among pkgs (of module) that breaks the
// layering, as "importer imports imported (from tests): why", sorted.
func Check(module string, pkgs []Package) []string {
	seen := map[string]bool{}
	for _, p := range pkgs {
		from, fromRel := layerOf(module, p.ImportPath)
		if from == layerOther {
			continue
		}
		for _, set := range []struct {
			imports []string
			test    bool
		}{{p.Imports, false}, {p.TestImports, true}, {p.XTestImports, true}} {
			for _, imp := range set.imports {
				to, toRel := layerOf(module, imp)
				if to == layerOther || toRel == fromRel {
					continue
				}
				why := ""
				switch {
				case testSupport[toRel] && !set.test && !strings.HasPrefix(fromRel, "test/") && !testHarness[fromRel]:
					why = "test support imported by non-test code"
				case to < from:
					why = "imports a layer above its own (cmd → internal → services → pkg)"
				case role(fromRel) != "" && role(toRel) != "" && role(fromRel) != role(toRel):
					why = "a role imports another role; call it through its gRPC client"
				}
				if why == "" {
					continue
				}
				where := ""
				if set.test {
					where = " (from tests)"
				}
				seen[fmt.Sprintf("%s imports %s%s: %s", fromRel, toRel, where, why)] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// LongFiles returns "path: N lines" for every source file of pkgs longer
// than max lines, paths relative to root; generated files (the "Code
// generated ... DO NOT EDIT." line) are left out.
func LongFiles(root string, pkgs []Package, max int) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, p := range pkgs {
		for _, names := range [][]string{p.GoFiles, p.TestGoFiles, p.XTestGoFiles} {
			for _, n := range names {
				path := filepath.Join(p.Dir, n)
				if seen[path] {
					continue
				}
				seen[path] = true
				lines, generated, err := countLines(path)
				if err != nil {
					return nil, err
				}
				if lines > max && !generated {
					rel, err := filepath.Rel(root, path)
					if err != nil {
						rel = path
					}
					out = append(out, fmt.Sprintf("%s: %d lines", filepath.ToSlash(rel), lines))
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func countLines(path string) (n int, generated bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, fmt.Errorf("layering: %w", err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
		if l := sc.Text(); strings.HasPrefix(l, "// Code generated ") && strings.HasSuffix(l, " DO NOT EDIT.") {
			generated = true
		}
	}
	return n, generated, sc.Err()
}
