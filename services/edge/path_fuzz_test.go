package edge

import (
	"path"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// asciiHasPrefixFold reports whether s begins with prefix, ignoring ASCII
// case only (as IIS compares paths).
func asciiHasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := range len(prefix) {
		a, b := s[i], prefix[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// FuzzAllowedPath checks the path policy against what a device controls
// (the decoded request path, issue 12): every path the edge forwards still
// lies under a configured prefix once resolved as IIS would (backslashes
// as slashes, dot segments applied, ASCII case ignored).
func FuzzAllowedPath(f *testing.F) {
	c := config.Default()
	cfg, err := newConfig(&c)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"/Microsoft-Server-ActiveSync", "/EWS/Exchange.asmx", "/EWS/../owa/", `/EWS/..\owa`,
		"/autodiscover/autodiscover.xml", "/Autodiscover/x", "/EWſ/x", "/ews//../owa", "/EWS/.%2e/owa",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !cfg.allowedPath(p) {
			return
		}
		resolved := path.Clean(strings.ReplaceAll(p, `\`, "/"))
		for _, prefix := range cfg.Paths {
			bare := strings.TrimSuffix(prefix, "/")
			if asciiHasPrefixFold(resolved, bare) && (len(resolved) == len(bare) || resolved[len(bare)] == '/') {
				return
			}
		}
		t.Fatalf("allowedPath(%q) = true, but IIS would serve %q, under no prefix of %q", p, resolved, cfg.Paths)
	})
}
