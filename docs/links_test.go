// Package docs holds the project's documentation; its test checks that every
// link and every repository path the Markdown files name resolves in a fresh
// clone, so the README stands on its own (nothing outside the repository).
package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// mdLink matches [text](target) and ![alt](target).
	mdLink = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)\)`)
	// codePath matches a backticked repository path such as `docs/operations.md`
	// or `deploy/lab/lab.sh`: a known top-level folder, then path characters.
	codePath = regexp.MustCompile("`((?:docs|deploy|scripts|bench|cmd|internal|pkg|services|proto|test|\\.ci)/[A-Za-z0-9_./-]+)`")
)

// repoRoot is the repository's top folder (this package is docs/).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// markdownFiles lists the Markdown files git tracks (or, outside a checkout,
// every .md file below root).
func markdownFiles(t testing.TB, root string) []string {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard", "*.md").Output()
	if err == nil && len(out) > 0 {
		return strings.Fields(string(out))
	}
	var files []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return nil
	})
	return files
}

// brokenTargets returns the link targets and repository paths of one Markdown
// document (at rel, under root) that do not resolve inside root.
func brokenTargets(root, rel, text string) []string {
	var bad []string
	dir := filepath.Dir(filepath.Join(root, rel))
	for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
		target := m[1]
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || strings.HasPrefix(target, "#") {
			continue
		}
		target, _, _ = strings.Cut(target, "#")
		abs := filepath.Join(dir, filepath.FromSlash(target))
		if !inside(root, abs) {
			bad = append(bad, target+" (outside the repository)")
			continue
		}
		if _, err := os.Stat(abs); err != nil {
			bad = append(bad, target)
		}
	}
	for _, m := range codePath.FindAllStringSubmatch(text, -1) {
		p := strings.TrimRight(m[1], ".")
		if strings.ContainsAny(p, "*{}<>") {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err != nil {
			bad = append(bad, "`"+p+"`")
		}
	}
	return bad
}

// inside reports whether p is root or below it.
func inside(root, p string) bool {
	r, err := filepath.Rel(root, p)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator))
}

// TestLinksResolve: every Markdown link and every backticked repository path
// in the repository's Markdown files names something in the repository.
func TestLinksResolve(t *testing.T) {
	root := repoRoot(t)
	files := markdownFiles(t, root)
	if len(files) == 0 {
		t.Fatal("no Markdown files found")
	}
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range brokenTargets(root, rel, string(data)) {
			t.Errorf("%s: %s does not resolve in the repository", rel, b)
		}
	}
}

// TestBrokenTargets shows the check fails where it should: a link leaving the
// repository (the README once linked ../shared/DESIGN.md), a missing file and
// a missing backticked path; and passes working links.
func TestBrokenTargets(t *testing.T) {
	root := repoRoot(t)
	tests := []struct {
		name, text string
		want       int
	}{
		{"outside the repository", "[design](../shared/DESIGN.md)", 1},
		{"missing file", "[x](docs/nothing-here.md)", 1},
		{"missing backticked path", "see `docs/nothing-here.md`", 1},
		{"existing link", "[ops](docs/operations.md) and ![p](docs/status-page.png)", 0},
		{"anchor and URL", "[a](#top) [b](https://example.com/x) [c](docs/operations.md#metrics)", 0},
		{"existing backticked path", "`deploy/lab/lab.sh` and `docs/operations.md`", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := brokenTargets(root, "README.md", tt.text); len(got) != tt.want {
				t.Fatalf("brokenTargets(%q) = %q, want %d", tt.text, got, tt.want)
			}
		})
	}
}
