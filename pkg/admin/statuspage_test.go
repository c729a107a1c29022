package admin

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// The sections below have the shapes services/ticket and services/crl
// publish (same JSON names), so a rename there shows up here.
type testTGT struct {
	Realm     string    `json:"realm"`
	AuthTime  time.Time `json:"auth_time"`
	EndTime   time.Time `json:"end_time"`
	RefreshAt time.Time `json:"refresh_at"`
}

type testCRLSource struct {
	URL         string    `json:"url"`
	Issuer      string    `json:"issuer,omitempty"`
	Entries     int       `json:"entries"`
	ThisUpdate  time.Time `json:"thisUpdate,omitzero"`
	NextUpdate  time.Time `json:"nextUpdate,omitzero"`
	FetchedAt   time.Time `json:"fetchedAt,omitzero"`
	Stale       bool      `json:"stale"`
	Failures    int       `json:"failures"`
	LastError   string    `json:"lastError,omitempty"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
}

func render(t *testing.T, o StatusPageOptions) string {
	t.Helper()
	srv := httptest.NewServer(StatusPage(o))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return html.UnescapeString(string(b))
}

func TestStatusPageRendersPublishedFigures(t *testing.T) {
	now := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
	b := &Board{}
	b.Publish("ticket", func() any {
		return map[string]any{
			"cache_entries": 17,
			"tgts":          []testTGT{{Realm: "LAB.TEST", AuthTime: now.Add(-5 * time.Minute), EndTime: now.Add(10 * time.Hour), RefreshAt: now.Add(8 * time.Hour)}},
			KeyKDCErrors:    map[string]int{"13": 2, "6": 5},
			KeyCaches:       []map[string]any{{"name": "tickets", "entries": 17, "hits": 90, "misses": 10}},
		}
	})
	b.Publish("crl", func() any {
		return map[string]any{"enabled": true, "snapshotVersion": 4, "interval": "24h0m0s", "sources": []testCRLSource{
			{URL: "http://cdp.lab.test/inter.crl", Issuer: "CN=Issuing CA 1", Entries: 4, ThisUpdate: now.Add(-90 * time.Minute),
				NextUpdate: now.Add(6 * time.Hour), FetchedAt: now.Add(-time.Minute), NextAttempt: now.Add(23 * time.Hour)},
			{URL: "http://cdp.lab.test/down.crl", Failures: 3, LastError: "crl: fetch: connection refused"},
		}}
	})
	b.Publish("edge", func() any {
		return map[string]any{"cached_tickets": 3, KeyRecentRefusals: []map[string]any{
			{"time": now.Add(-30 * time.Second), "upn": "eve@lab.test", "status": "403", "reason": "KDC_ERR_BADOPTION <script>x</script>"}}}
	})
	o := StatusPageOptions{
		Board: b, Now: func() time.Time { return now }, PersonalData: true,
		Readiness: func() map[string]error {
			return map[string]error{"edge": nil, "ticket": errors.New("no TGT for LAB.TEST: kdc unreachable"), "crl": nil}
		},
		ConfigProblems: func() []config.Problem {
			return []config.Problem{{Severity: config.SeverityWarning, Key: "kcd.domains[0].domainController", Value: "dc1", Message: "short name", Fix: "write the FQDN"}}
		},
	}
	page := render(t, o)
	for _, want := range []string{
		"not ready", "no TGT for LAB.TEST: kdc unreachable", "LAB.TEST", "5m00s ago", "in 10h00m",
		"ticket: tickets", "90.0% of 100 lookups", "edge: cached tickets",
		"BADOPTION", "C_PRINCIPAL_UNKNOWN",
		"CN=Issuing CA 1", "1h30m ago", "in 23h00m", "3 failure(s): crl: fetch: connection refused",
		"eve@lab.test", "KDC_ERR_BADOPTION <script>x</script>",
		"kcd.domains[0].domainController", "write the FQDN",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// KDC errors sorted by code: 6 before 13.
	if i6, i13 := strings.Index(page, "<td>6</td>"), strings.Index(page, "<td>13</td>"); i6 < 0 || i13 < 0 || i6 > i13 {
		t.Errorf("KDC codes not in order (6 at %d, 13 at %d)", i6, i13)
	}
}

func TestStatusPageEscapesAndSaysNotReported(t *testing.T) {
	b := &Board{}
	b.Publish("edge", func() any {
		return map[string]any{KeyRecentRefusals: []map[string]any{{"reason": "<script>alert(1)</script>"}}}
	})
	srv := httptest.NewServer(StatusPage(StatusPageOptions{Board: b, Readiness: func() map[string]error { return map[string]error{"edge": nil} }}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(raw)
	if strings.Contains(page, "<script>") {
		t.Fatal("a published value reached the page unescaped")
	}
	if strings.Contains(page, "<script") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Error("the page must carry no script and forbid it")
	}
	for _, want := range []string{"ready", "TGT per realm", "not reported (no ticket role in this process)",
		"not reported (no crl role in this process)", "not reported (run segmesh config check)"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestStatusPageConfigSectionFromBoard(t *testing.T) {
	b := &Board{}
	b.Publish(SectionConfig, ConfigSection([]config.Problem{{Severity: config.SeverityError, Key: "kcd.targetSPN", Message: "missing", Fix: "write HTTP/x"}}))
	page := render(t, StatusPageOptions{Board: b})
	for _, want := range []string{"kcd.targetSPN", "write HTTP/x", "no roles reported"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestStatusPageRefusesPost(t *testing.T) {
	rec := httptest.NewRecorder()
	StatusPage(StatusPageOptions{}).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/status", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
}

func BenchmarkStatusPage(b *testing.B) {
	board := &Board{}
	board.Publish("ticket", func() any { return map[string]any{"cache_entries": 1, "tgts": []testTGT{{Realm: "LAB.TEST"}}} })
	h := StatusPage(StatusPageOptions{Board: board})
	req := httptest.NewRequest(http.MethodGet, "/status", nil)
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

// recordMetrics records, through the OpenTelemetry instruments named as the
// roles name them, what TestStatusPageReadsMetricsWhereSectionsAreSilent
// expects, and returns the registry behind /metrics.
func recordMetrics(t testing.TB) prometheus.Gatherer {
	t.Helper()
	prov, err := telemetry.Setup(context.Background(), telemetry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prov.Shutdown(context.Background()) })
	m := prov.Meter.Meter("statuspage_test")
	add := func(name string, n int64, kv ...string) {
		t.Helper()
		c, err := m.Int64Counter(name)
		if err != nil {
			t.Fatal(err)
		}
		var attrs []attribute.KeyValue
		for i := 0; i+1 < len(kv); i += 2 {
			attrs = append(attrs, attribute.String(kv[i], kv[i+1]))
		}
		c.Add(context.Background(), n, metric.WithAttributes(attrs...))
	}
	add(telemetry.MetricEdgeTicketCache, 1, "result", "hit")
	add(telemetry.MetricEdgeTicketCache, 3, "result", "miss")
	add(telemetry.MetricEdgeCertificatesRefused, 2, "reason", "revoked")
	add(telemetry.MetricEdgeRequests, 3, "status", "200")
	add(telemetry.MetricEdgeRequests, 1, "status", "403")
	add(telemetry.MetricTicketKDCExchanges, 1, "krb_code", "0", "realm", "LAB.TEST", "result", "ok", "stage", "as-req")
	add(telemetry.MetricTicketKDCExchanges, 4, "krb_code", "13", "realm", "LAB.TEST", "result", "krb_error", "stage", "s4u2proxy")
	add(telemetry.MetricTicketKDCExchanges, 1, "krb_code", "25", "realm", "LAB.TEST", "result", "krb_error", "stage", "as-req")
	return prov.Registry
}

func TestStatusPageReadsMetricsWhereSectionsAreSilent(t *testing.T) {
	b := &Board{}
	b.Publish("edge", func() any { return map[string]any{"cached_tickets": 2} })
	b.Publish("ticket", func() any { return map[string]any{"cache_entries": 2} })
	page := render(t, StatusPageOptions{Board: b, Metrics: recordMetrics(t)})
	for _, want := range []string{"25.0% of 4 lookups", "<td>13</td><td>4</td>", "certificate revoked: 2", "HTTP 403: 1"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<td>25</td>") {
		t.Error("PREAUTH_REQUIRED at the AS exchange counted as an error")
	}
	if strings.Contains(page, "ticket: entries</td><td>2</td><td>hit rate not reported") == false {
		t.Error("a cache without a counter should say its hit rate is not reported")
	}
}
