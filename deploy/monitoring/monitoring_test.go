// Package monitoring_test checks segmesh's Grafana dashboard and Prometheus
// alert rules (deploy/monitoring): every query parses with Prometheus's own
// PromQL parser and names only series segmesh exports (the catalogue in
// pkg/telemetry/metrics.go), every alert links a section of
// docs/operations.md that exists and has a `promtool test rules` case that
// fires it and one that shows it quiet, and the Prometheus Operator copy
// in deploy/k8s/components/monitoring holds the same rules. CI also runs
// promtool itself on the rules (scripts/test.sh).
package monitoring_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/segmesh/segmesh/pkg/telemetry"
)

var update = flag.Bool("update", false, "rewrite deploy/k8s/components/monitoring/prometheusrule.yaml from alerts.yml")

const (
	dashboardFile  = "segmesh-dashboard.json"
	alertsFile     = "alerts.yml"
	alertTestsFile = "alerts_test.yml"
	operationsDoc  = "../../docs/operations.md"
	operatorRule   = "../k8s/components/monitoring/prometheusrule.yaml"
	runbookPrefix  = "https://github.com/segmesh/segmesh/blob/main/docs/operations.md#"
)

// grafanaVars are the values Grafana puts in place of the dashboard's
// variables before it sends a query.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h",
	"$job", ".*", "$instance", ".*",
)

// labelValues is Grafana's variable query form label_values(selector, label).
var labelValues = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// seriesNamed returns the series names expr's selectors name, or an error
// when it does not parse or names a series segmesh does not export. A
// selector by a regular expression on __name__ must match an exported one.
// extra names series allowed besides segmesh's (ALERTS).
func seriesNamed(expr string, extra ...string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVars.Replace(expr)) // no experimental functions: what every Prometheus accepts
	if err != nil {
		return nil, fmt.Errorf("%q does not parse: %w", expr, err)
	}
	exported := append(telemetry.ExportedSeries(), extra...)
	var names []string
	var errs []error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != model.MetricNameLabel {
				continue
			}
			if m.Type == labels.MatchEqual {
				names = append(names, m.Value)
				if !slices.Contains(exported, m.Value) {
					errs = append(errs, fmt.Errorf("%q names %s, which segmesh does not export (pkg/telemetry/metrics.go lists what it does)", expr, m.Value))
				}
				continue
			}
			if !slices.ContainsFunc(exported, m.Matches) {
				errs = append(errs, fmt.Errorf("%q selects %s, which matches no series segmesh exports", expr, m))
			}
		}
		return nil
	})
	if len(names) == 0 && len(errs) == 0 && !strings.Contains(expr, "__name__") {
		errs = append(errs, fmt.Errorf("%q names no series", expr))
	}
	return names, errors.Join(errs...)
}

// dashboard is the part of a Grafana dashboard the checks read.
type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name string `json:"name"`
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

type panel struct {
	Type        string  `json:"type"`
	Title       string  `json:"title"`
	Description string  `json:"description"`
	Panels      []panel `json:"panels"`
	Targets     []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// DashboardQueries returns every PromQL query of the dashboard file, keyed
// by where it is ("panel title/refId", "variable job", "annotation ...").
func dashboardQueries(tb testing.TB, file string) map[string]string {
	tb.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		tb.Fatalf("%s: %v", file, err)
	}
	out := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 || p.Title == "" || p.Description == "" {
				tb.Errorf("panel %q: needs a title, a description and a query", p.Title)
			}
			for _, t := range p.Targets {
				key := p.Title + "/" + t.RefID
				if _, dup := out[key]; dup {
					tb.Errorf("two queries at %s", key)
				}
				out[key] = t.Expr
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		s, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(s)
		if m == nil {
			tb.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, s)
			continue
		}
		out["variable "+v.Name] = m[1]
	}
	for _, a := range d.Annotations.List {
		out["annotation "+a.Name] = a.Expr
	}
	return out
}

// TestDashboardQueries parses every query of the dashboard and checks the
// series it names are segmesh's, so a renamed metric breaks this test
// instead of a panel.
func TestDashboardQueries(t *testing.T) {
	qs := dashboardQueries(t, dashboardFile)
	if len(qs) < 20 {
		t.Fatalf("only %d queries in %s", len(qs), dashboardFile)
	}
	seen := map[string]bool{}
	for where, q := range qs {
		names, err := seriesNamed(q, "ALERTS")
		if err != nil {
			t.Errorf("%s: %v", where, err)
		}
		for _, n := range names {
			seen[n] = true
		}
	}
	// Every role's metrics appear on the dashboard.
	for _, m := range telemetry.Metrics() {
		if !slices.ContainsFunc(m.Series(), func(s string) bool { return seen[s] }) {
			t.Errorf("no panel shows %s (%s)", m.Name, m.Family())
		}
	}
}

// TestSeriesNamedRefuses shows the check fails on what it must catch.
func TestSeriesNamedRefuses(t *testing.T) {
	for _, tc := range []struct {
		expr, want string
	}{
		{`rate(edge_requests_total{job=~"$job"}[$__rate_interval])`, ""},
		{`sum by (status) (rate(edge_request_total[5m]))`, "edge_request_total, which segmesh does not export"},
		{`segmesh_crl_stale == `, "does not parse"},
		{`{__name__=~"nginx_.+"}`, "matches no series"},
		{`vector(1)`, "names no series"},
	} {
		_, err := seriesNamed(tc.expr)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.expr, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one with %q", tc.expr, err, tc.want)
		}
	}
}

// ruleGroups is a Prometheus rules file (promtool check rules validates
// the rest; Prometheus's own rulefmt would bring its query engine and a
// Kubernetes client into the module graph).
type ruleGroups struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Record      string            `json:"record"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// TestAlertRules reads the rules strictly, checks each alert's
// series, severity and runbook section, and that alerts_test.yml fires it
// and shows it quiet.
func TestAlertRules(t *testing.T) {
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rg ruleGroups
	if err := yaml.UnmarshalStrict(data, &rg); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	anchors := headingAnchors(t, operationsDoc)
	cases := promtoolCases(t, alertTestsFile)
	n := 0
	for _, g := range rg.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if _, err := seriesNamed(r.Expr); err != nil {
				t.Errorf("alert %s: %v", r.Alert, err)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, s)
			}
			url := r.Annotations["runbook_url"]
			if !strings.HasPrefix(url, runbookPrefix) || !anchors[strings.TrimPrefix(url, runbookPrefix)] {
				t.Errorf("alert %s: runbook_url %q does not name a heading of docs/operations.md", r.Alert, url)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: needs a summary and a description", r.Alert)
			}
			if c := cases[r.Alert]; c.fires == 0 || c.quiet == 0 {
				t.Errorf("alert %s: %s has %d cases firing it and %d showing it quiet; want both", r.Alert, alertTestsFile, c.fires, c.quiet)
			}
		}
	}
	if n < 12 {
		t.Errorf("only %d alerts", n)
	}
}

// headingAnchors returns the GitHub anchors of file's Markdown headings.
func headingAnchors(tb testing.TB, file string) map[string]bool {
	tb.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, l := range strings.Split(string(data), "\n") {
		if h, ok := strings.CutPrefix(l, "#"); ok {
			h = strings.TrimLeft(h, "#")
			out[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(strings.TrimSpace(h)), ""), " ", "-")] = true
		}
	}
	return out
}

type caseCount struct{ fires, quiet int }

// promtoolCases counts, per alert, the promtool cases expecting it to fire
// and those expecting it quiet.
func promtoolCases(tb testing.TB, file string) map[string]caseCount {
	tb.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	var doc struct {
		Tests []struct {
			AlertRuleTest []struct {
				AlertName string            `json:"alertname"`
				ExpAlerts []json.RawMessage `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		tb.Fatalf("%s: %v", file, err)
	}
	out := map[string]caseCount{}
	for _, tc := range doc.Tests {
		for _, a := range tc.AlertRuleTest {
			c := out[a.AlertName]
			if len(a.ExpAlerts) == 0 {
				c.quiet++
			} else {
				c.fires++
			}
			out[a.AlertName] = c
		}
	}
	return out
}

// TestPrometheusRuleMatchesAlerts: the Prometheus Operator's copy holds
// exactly alerts.yml's groups. `go test -run PrometheusRule -update`
// rewrites it.
func TestPrometheusRuleMatchesAlerts(t *testing.T) {
	src, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(operatorRule, []byte(operatorRuleFor(string(src))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cur, err := os.ReadFile(operatorRule)
	if err != nil {
		t.Fatal(err)
	}
	var want, got struct {
		Groups any `json:"groups"`
		Spec   struct {
			Groups any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(src, &want); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(cur, &got); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(want.Groups)
	b, _ := json.Marshal(got.Spec.Groups)
	if string(a) != string(b) || want.Groups == nil {
		t.Errorf("%s differs from %s: run go test ./deploy/monitoring -run PrometheusRule -update", operatorRule, alertsFile)
	}
}

// operatorRuleFor wraps the rules file src in a PrometheusRule.
func operatorRuleFor(src string) string {
	_, groups, _ := strings.Cut(src, "\ngroups:\n")
	var b strings.Builder
	b.WriteString(`# Written by go test ./deploy/monitoring -run PrometheusRule -update from
# deploy/monitoring/alerts.yml (the same groups under spec); edit that file.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: segmesh
  namespace: segmesh
  labels:
    app.kubernetes.io/name: segmesh
    app.kubernetes.io/part-of: segmesh
    # kube-prometheus-stack selects rules by its release label by default:
    # set it to your release's name (or set ruleSelectorNilUsesHelmValues=false).
    release: kube-prometheus-stack
spec:
  groups:
`)
	for _, l := range strings.SplitAfter(groups, "\n") {
		if strings.TrimSpace(l) != "" {
			b.WriteString("  ")
		}
		b.WriteString(l)
	}
	return b.String()
}
