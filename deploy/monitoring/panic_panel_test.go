package monitoring_test

import (
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// panicPanel is the dashboard panel of the panic counters.
const panicPanel = "Handler panics: gRPC and edge"

// promtoolVars are the values alerts_test.yml's promql_expr_test cases
// put in place of the dashboard's variables (an interval of five of the
// test's one-minute samples).
var promtoolVars = strings.NewReplacer("$__rate_interval", "5m", "$job", ".*", "$instance", ".*")

// TestPanicPanelQueriesTested: every query of the panic panel is one that
// alerts_test.yml evaluates (promtool test rules, scripts/test.sh), where
// a counter's series appearing with its first panic must show as an
// increase of 1. The panel used increase() alone, which shows that first
// panic as 0: a process's first panic never appeared on the dashboard
// (session 8's ipanic review; the promtool case failed with the old
// queries).
func TestPanicPanelQueriesTested(t *testing.T) {
	data, err := os.ReadFile(alertTestsFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests []struct {
			ExprTests []struct {
				Expr string `json:"expr"`
			} `json:"promql_expr_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", alertTestsFile, err)
	}
	tested := map[string]int{}
	for _, tc := range doc.Tests {
		for _, e := range tc.ExprTests {
			tested[e.Expr]++
		}
	}
	n := 0
	for key, expr := range dashboardQueries(t, dashboardFile) {
		if !strings.HasPrefix(key, panicPanel+"/") {
			continue
		}
		n++
		if got := tested[promtoolVars.Replace(expr)]; got < 2 {
			t.Errorf("%s: %s evaluates %q %d times, want at least 2 (a counter's first panic, and a quiet time after it)",
				key, alertTestsFile, promtoolVars.Replace(expr), got)
		}
	}
	if n != 3 {
		t.Fatalf("%d queries on the panel %q, want 3 (gRPC, edge, background)", n, panicPanel)
	}
}
