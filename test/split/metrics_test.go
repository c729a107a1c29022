//go:build lab

package split

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// exchangesMetric is the ticket role's KDC exchange counter as Prometheus names it.
const exchangesMetric = "segmesh_ticket_kdc_exchanges_total"

// kdcExchanges returns the process's successful KDC exchanges by stage
// (as-req, s4u2self, s4u2proxy, referral) from its /metrics.
func kdcExchanges(t testing.TB, admin string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("metrics of %s: %v", admin, err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics of %s: %v", admin, err)
	}
	out := map[string]int{}
	fam := fams[exchangesMetric]
	if fam == nil {
		return out
	}
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["result"] != "ok" {
			continue
		}
		out[labels["stage"]] += int(m.GetCounter().GetValue())
	}
	return out
}

// ticketCacheEntries reads the ticket role's cache size from the admin
// status page (/status.json, sections.ticket.cache_entries).
func ticketCacheEntries(t testing.TB, admin string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/status.json", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("status of %s: %v", admin, err)
	}
	defer resp.Body.Close()
	var page struct {
		Sections map[string]json.RawMessage `json:"sections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatalf("status of %s is not JSON: %v", admin, err)
	}
	var sec struct {
		CacheEntries *int `json:"cache_entries"`
	}
	raw, ok := page.Sections["ticket"]
	if ok {
		if err := json.Unmarshal(raw, &sec); err != nil {
			t.Fatalf("status of %s: ticket section: %v", admin, err)
		}
	}
	if sec.CacheEntries == nil {
		keys := make([]string, 0, len(page.Sections))
		for k := range page.Sections {
			keys = append(keys, k)
		}
		t.Fatalf("status of %s has no ticket.cache_entries (sections %s)", admin, strings.Join(keys, ", "))
	}
	return *sec.CacheEntries
}

func sumStage(per []map[string]int, stage string) int {
	n := 0
	for _, m := range per {
		n += m[stage]
	}
	return n
}

func describe(per []map[string]int, names []string) string {
	var b strings.Builder
	for i, m := range per {
		fmt.Fprintf(&b, "%s: s4u2self=%d s4u2proxy=%d as-req=%d; ", names[i], m["s4u2self"], m["s4u2proxy"], m["as-req"])
	}
	return b.String()
}
