package edge

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// TestPrepareConfigMovesNewRequestsOnly changes the Exchange URL while a
// request is held at the old Exchange: the held one is answered by the old
// one, the next request goes to the new one, and nothing fails.
func TestPrepareConfigMovesNewRequestsOnly(t *testing.T) {
	h := newHarness(t, nil, options{})
	held, release := holdAt(t, h.exchange, byHoldHeader, "old")
	next := newFakeExchange(t, h.tickets)
	next.handler = func(w http.ResponseWriter, _ *http.Request, _ string) { _, _ = io.WriteString(w, "new") }
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	c := h.client(&cert, false)
	heldDone := sendAsync(t, c, http.MethodGet, h.url(syncPath), "", map[string]string{"X-Hold": "1"})
	<-held

	cfg := *h.cfg
	cfg.Segmesh.Edge.ExchangeURLs = []string{next.srv.URL}
	commit, err := h.edge.PrepareConfig(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := get(t, c, h.url(syncPath), nil); resp.StatusCode != http.StatusOK || body != "old" {
		t.Fatalf("prepared, not committed: %d %q, want 200 from the old Exchange", resp.StatusCode, body)
	}
	commit()
	if resp, body := get(t, c, h.url(syncPath), nil); resp.StatusCode != http.StatusOK || body != "new" {
		t.Fatalf("after the change: %d %q, want 200 from the new Exchange\n%s", resp.StatusCode, body, h.logs.String())
	}
	release()
	if a := <-heldDone; a.err != nil || a.status != http.StatusOK || a.body != "old" {
		t.Fatalf("held request: %d %q (%v), want 200 from the old Exchange", a.status, a.body, a.err)
	}
	if got := h.edge.statusSection().(map[string]any)["upstreams"]; got != 1 {
		t.Errorf("status upstreams = %v", got)
	}
}

// TestPrepareConfigRefusesBadUpstreams: a configuration the edge cannot use
// leaves the old upstreams in force.
func TestPrepareConfigRefusesBadUpstreams(t *testing.T) {
	h := newHarness(t, nil, options{})
	before := h.edge.upstreams.route.Load()
	for _, tc := range []struct {
		name   string
		mutate func(*config.Config)
	}{
		{"not a URL", func(c *config.Config) { c.Segmesh.Edge.ExchangeURLs = []string{"mail.corp.example"} }},
		{"a trust store that does not exist", func(c *config.Config) { c.ClientCertTrustStorePath = "missing.pem" }},
	} {
		cfg := *h.cfg
		tc.mutate(&cfg)
		if _, err := h.edge.PrepareConfig(context.Background(), &cfg); err == nil {
			t.Errorf("%s: PrepareConfig accepted it", tc.name)
		}
		if h.edge.upstreams.route.Load() != before {
			t.Errorf("%s: upstreams changed", tc.name)
		}
	}
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	if resp, body := get(t, h.client(&cert, false), h.url(syncPath), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after refused changes: %d %s", resp.StatusCode, body)
	}
}

// TestPrepareConfigChangesTheSPN: after a reload changing kcd.targetSPN the
// edge asks tickets for the new SPN; nothing changes before the commit.
func TestPrepareConfigChangesTheSPN(t *testing.T) {
	h := newHarness(t, nil, options{})
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	c := h.client(&cert, false)
	lastSPN := func() string {
		h.tickets.mu.Lock()
		defer h.tickets.mu.Unlock()
		return h.tickets.spns[len(h.tickets.spns)-1]
	}
	if resp, body := get(t, c, h.url(syncPath), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("before: %d %s", resp.StatusCode, body)
	}
	old := lastSPN()
	cfg := *h.cfg
	cfg.KCD.TargetSPN = "HTTP/mail2.lab.test, " + old
	commit, err := h.edge.PrepareConfig(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.edge.targetSPN(); got != old {
		t.Fatalf("SPN %q in force before the commit, want %q", got, old)
	}
	commit()
	if resp, body := get(t, c, h.url(syncPath), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after: %d %s", resp.StatusCode, body)
	}
	if got := lastSPN(); got != "HTTP/mail2.lab.test" {
		t.Fatalf("the edge asked a ticket for %q after the change, want HTTP/mail2.lab.test", got)
	}
	if got := h.edge.statusSection().(map[string]any)["target_spn"]; got != "HTTP/mail2.lab.test" {
		t.Errorf("status target_spn = %v", got)
	}
}
