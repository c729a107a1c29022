package telemetry

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/metric"
)

// TestMetricsCatalogueMatchesExporter creates every catalogued instrument
// the way the roles do, records a value, gathers the registry /metrics
// serves, and checks each family is named as Metric.Family says, and that
// the process collector's series the catalogue promises are there.
func TestMetricsCatalogueMatchesExporter(t *testing.T) {
	ctx := context.Background()
	p, err := Setup(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(ctx) })
	m := p.Meter.Meter("catalogue")
	for _, c := range Metrics() {
		var opts []metric.InstrumentOption
		if c.Unit != "" {
			opts = append(opts, metric.WithUnit(c.Unit))
		}
		switch c.Kind {
		case Counter:
			i, err := m.Int64Counter(c.Name, counterOpts(opts)...)
			if err != nil {
				t.Fatal(err)
			}
			i.Add(ctx, 1)
		case Gauge:
			i, err := m.Float64Gauge(c.Name, gaugeOpts(opts)...)
			if err != nil {
				t.Fatal(err)
			}
			i.Record(ctx, 1)
		case Histogram:
			i, err := m.Float64Histogram(c.Name, histogramOpts(opts)...)
			if err != nil {
				t.Fatal(err)
			}
			i.Record(ctx, 0.1)
		default:
			t.Fatalf("%s: kind %d", c.Name, c.Kind)
		}
	}
	families, err := p.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range families {
		got = append(got, f.GetName())
	}
	for _, c := range Metrics() {
		if !slices.Contains(got, c.Family()) {
			t.Errorf("%s: catalogue says family %q; /metrics has %v", c.Name, c.Family(), got)
		}
	}
	for _, s := range ExportedSeries() {
		if s == "process_open_fds" || s == "process_max_fds" || s == "go_goroutines" {
			if !slices.Contains(got, s) {
				t.Errorf("ExportedSeries names %s, which the collectors do not export", s)
			}
		}
	}
}

func TestMetricSeries(t *testing.T) {
	for _, tc := range []struct {
		m    Metric
		want []string
	}{
		{Metric{"edge.requests", Counter, ""}, []string{"edge_requests_total"}},
		{Metric{"edge.request.duration", Histogram, "s"}, []string{"edge_request_duration_seconds_bucket", "edge_request_duration_seconds_sum", "edge_request_duration_seconds_count"}},
		{Metric{"segmesh_crl_age_seconds", Gauge, "s"}, []string{"segmesh_crl_age_seconds"}},
		{Metric{"segmesh_crl_stale", Gauge, ""}, []string{"segmesh_crl_stale"}},
	} {
		if got := tc.m.Series(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.m.Name, got, tc.want)
		}
	}
	all := ExportedSeries()
	if !slices.IsSorted(all) || len(slices.Compact(slices.Clone(all))) != len(all) {
		t.Errorf("ExportedSeries not sorted or has duplicates: %v", all)
	}
}

func counterOpts(o []metric.InstrumentOption) []metric.Int64CounterOption {
	out := make([]metric.Int64CounterOption, len(o))
	for i, x := range o {
		out[i] = x
	}
	return out
}

func gaugeOpts(o []metric.InstrumentOption) []metric.Float64GaugeOption {
	out := make([]metric.Float64GaugeOption, len(o))
	for i, x := range o {
		out[i] = x
	}
	return out
}

func histogramOpts(o []metric.InstrumentOption) []metric.Float64HistogramOption {
	out := make([]metric.Float64HistogramOption, len(o))
	for i, x := range o {
		out[i] = x
	}
	return out
}

// instrumentMethods are the metric.Meter methods that create an instrument.
var instrumentMethods = map[string]bool{
	"Int64Counter": true, "Float64Counter": true, "Int64UpDownCounter": true, "Float64UpDownCounter": true,
	"Int64Histogram": true, "Float64Histogram": true, "Int64Gauge": true, "Float64Gauge": true,
	"Int64ObservableCounter": true, "Float64ObservableCounter": true, "Int64ObservableUpDownCounter": true,
	"Float64ObservableUpDownCounter": true, "Int64ObservableGauge": true, "Float64ObservableGauge": true,
}

// TestInstrumentsNamedFromCatalogue reads the module's non-test Go files and
// requires every instrument to be created with a telemetry.Metric...
// constant, and every such constant to be in Metrics(): a metric named
// anywhere else would be invisible to the dashboard and alert checks.
func TestInstrumentsNamedFromCatalogue(t *testing.T) {
	fset := token.NewFileSet()
	consts := map[string]string{} // constant name → value
	var bad []string
	calls := 0
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		inTelemetry := f.Name.Name == "telemetry" && strings.HasSuffix(filepath.Dir(path), filepath.Join("pkg", "telemetry"))
		ast.Inspect(f, func(n ast.Node) bool {
			if vs, ok := n.(*ast.ValueSpec); ok && inTelemetry {
				for i, id := range vs.Names {
					if lit, ok := valueAt(vs, i).(*ast.BasicLit); ok && strings.HasPrefix(id.Name, "Metric") && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						consts[id.Name] = v
					}
				}
			}
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !instrumentMethods[sel.Sel.Name] {
				return true
			}
			calls++
			if id, ok := call.Args[0].(*ast.Ident); ok && inTelemetry && strings.HasPrefix(id.Name, "Metric") {
				return true // this package's own instruments (panics.go) name the constant unqualified
			}
			arg, _ := call.Args[0].(*ast.SelectorExpr)
			if pkg, _ := pkgOf(arg); pkg != "telemetry" || !strings.HasPrefix(arg.Sel.Name, "Metric") {
				bad = append(bad, fmt.Sprintf("%s: %s names its instrument %s; use a telemetry.Metric... constant (pkg/telemetry/metrics.go)",
					fset.Position(call.Pos()), sel.Sel.Name, exprString(call.Args[0])))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Error(b)
	}
	if calls < 20 {
		t.Errorf("found only %d instrument creations: is the walk reading the module?", calls)
	}
	var names []string
	for _, m := range Metrics() {
		names = append(names, m.Name)
	}
	for c, v := range consts {
		if !slices.Contains(names, v) {
			t.Errorf("%s = %q is not in Metrics()", c, v)
		}
	}
	if len(consts) != len(names) {
		t.Errorf("%d Metric constants, %d entries in Metrics()", len(consts), len(names))
	}
}

func valueAt(vs *ast.ValueSpec, i int) ast.Expr {
	if i < len(vs.Values) {
		return vs.Values[i]
	}
	return nil
}

// pkgOf returns the package identifier of a selector like telemetry.X.
func pkgOf(s *ast.SelectorExpr) (string, bool) {
	if s == nil {
		return "", false
	}
	id, ok := s.X.(*ast.Ident)
	if !ok {
		return "", false
	}
	return id.Name, true
}

func exprString(e ast.Expr) string {
	var b strings.Builder
	_ = printer.Fprint(&b, token.NewFileSet(), e)
	return b.String()
}

// TestFamilyNamesEachCataloguedMetric: Family gives a reader in process the
// series name of a Metric... constant, and nothing for another name.
func TestFamilyNamesEachCataloguedMetric(t *testing.T) {
	for _, m := range Metrics() {
		if f := Family(m.Name); f != m.Family() || f == "" {
			t.Errorf("Family(%q) = %q, want %q", m.Name, f, m.Family())
		}
	}
	for _, n := range []string{"", "edge_requests_total", "segmesh_nope"} {
		if f := Family(n); f != "" {
			t.Errorf("Family(%q) = %q, want none", n, f)
		}
	}
}
