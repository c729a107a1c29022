package admin

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/telemetry"
)

// TestStatusPageNamesMetricsByConstant refuses a metric or series name
// written as a literal in this package's sources: the status page reads the
// registry by the telemetry.Metric... constants, so a renamed metric cannot
// leave it reading a series that no longer exists.
func TestStatusPageNamesMetricsByConstant(t *testing.T) {
	names := map[string]bool{}
	for _, m := range telemetry.Metrics() {
		names[m.Name] = true
		for _, s := range m.Series() {
			names[s] = true
		}
		names[strings.TrimSuffix(m.Family(), "_total")] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	read := 0
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		read++
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			if s, err := strconv.Unquote(lit.Value); err == nil && (names[s] || strings.HasPrefix(s, "segmesh_")) {
				t.Errorf("%s: metric name %s written as a literal; use telemetry.Family(telemetry.Metric...)", fset.Position(lit.Pos()), lit.Value)
			}
			return true
		})
	}
	if read < 3 {
		t.Fatalf("read %d files", read)
	}
}
