package edge

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
)

// closedByEdge waits (bounded) until the edge closes up's connection.
func closedByEdge(t *testing.T, up *rawUpConn, what string) {
	t.Helper()
	_ = up.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := up.br.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || n > 0 || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("%s: the upstream connection stayed open (%d, %v)", what, n, err)
	}
}

// reloadExchange moves h's Exchange URL to x's, as a reload would.
func reloadExchange(t *testing.T, h *harness, x *rawExchange) {
	t.Helper()
	cfg := *h.cfg
	cfg.Segmesh.Edge.ExchangeURLs = []string{"http://" + x.ln.Addr().String()}
	commit, err := h.edge.PrepareConfig(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	commit()
}

// TestRelayReloadClosesRemovedHosts: a reload that removes an Exchange
// host closes the relay's idle connections to it at once, and a
// connection still carrying a request there is closed when its answer is
// through, instead of being kept until Stop; requests under way keep
// their host, new ones go to the new one.
func TestRelayReloadClosesRemovedHosts(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, h *harness, old *rawExchange, d *device)
	}{
		{"an idle connection is closed at the reload", func(t *testing.T, h *harness, old *rawExchange, d *device) {
			oldURL := h.edge.upstreams.route.Load().urls[0]
			up := roundTrip(t, old, d, nil, "one")
			kept(t, h)
			next := newRawExchange(t)
			reloadExchange(t, h, next)
			closedByEdge(t, up, "idle at the reload")
			if n := h.edge.relay.idleCount(oldURL); n != 0 {
				t.Fatalf("%d idle connections kept to the removed host", n)
			}
			roundTrip(t, next, d, nil, "two")
		}},
		{"a connection in use is closed when its answer is through", func(t *testing.T, h *harness, old *rawExchange, d *device) {
			oldURL := h.edge.upstreams.route.Load().urls[0]
			d.sendWith(syncPath, "", "<Sync/>")
			up := old.accept()
			up.request()
			next := newRawExchange(t)
			reloadExchange(t, h, next)
			up.write(okAnswer("held"))
			expectBody(t, d, http.StatusOK, "held")
			closedByEdge(t, up, "given back after the reload")
			if n := h.edge.relay.idleCount(oldURL); n != 0 {
				t.Fatalf("%d idle connections kept to the removed host", n)
			}
			roundTrip(t, next, d, nil, "two")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, x, d := relayHarness(t, options{})
			tc.run(t, h, x, d)
		})
	}
}

// TestRelayConnsPerHost: with segmesh.edge.relayMaxConnsPerHost open to a
// host, a request waits for one of them to be given back and goes out on
// it, no new connection opened; one that waits past the bound gets 503
// with Retry-After, counted on the status page; the setting is read from
// config.json, its default when left out.
func TestRelayConnsPerHost(t *testing.T) {
	t.Run("waits for the connection given back", func(t *testing.T) {
		h, x, alice := relayHarness(t, options{tune: func(c *Config) { c.RelayMaxConnsPerHost = 1 }})
		bobCert := h.ca.issue(t, certOpts{cn: "bob"})
		bob := h.device(t, &bobCert)
		u := h.edge.upstreams.route.Load().urls[0]
		alice.sendWith(syncPath, "", "<Sync/>")
		up := x.accept()
		up.request()
		bob.sendWith(syncPath, "", "<Sync/>")
		waitFor(t, "bob waiting for the connection", func() bool {
			h.edge.relay.mu.Lock()
			defer h.edge.relay.mu.Unlock()
			return h.edge.relay.hosts[poolKey(u)].freed != nil
		})
		up.write(okAnswer("alice"))
		expectBody(t, alice, http.StatusOK, "alice")
		up.request()
		up.write(okAnswer("bob"))
		expectBody(t, bob, http.StatusOK, "bob")
		x.noNewConn()
		if n := h.edge.relay.conns(u); n != 1 {
			t.Fatalf("%d connections open, want 1", n)
		}
	})
	t.Run("none given back in time: 503", func(t *testing.T) {
		h, x, alice := relayHarness(t, options{tune: func(c *Config) { c.RelayMaxConnsPerHost, c.RelayConnWait = 1, time.Millisecond }})
		bobCert := h.ca.issue(t, certOpts{cn: "bob"})
		bob := h.device(t, &bobCert)
		alice.sendWith(syncPath, "", "<Sync/>")
		up := x.accept()
		up.request()
		bob.sendWith(syncPath, "", "<Sync/>")
		resp, _, err := bob.read()
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("bob got %v %v, want 503 with Retry-After", resp, err)
		}
		st := h.edge.statusSection().(map[string]any)
		if st["relay_busy_refused"] != int64(1) || st["relay_max_conns_per_host"] != 1 {
			t.Fatalf("status relay_busy_refused %v, relay_max_conns_per_host %v, want 1 and 1", st["relay_busy_refused"], st["relay_max_conns_per_host"])
		}
		waitFor(t, "the access line names the setting", func() bool {
			return strings.Contains(h.logs.String(), "segmesh.edge.relayMaxConnsPerHost")
		})
		up.write(okAnswer("alice"))
		expectBody(t, alice, http.StatusOK, "alice")
	})
	for _, tc := range []struct {
		set, want int
	}{{0, 0}, {64, 64}} {
		c := config.Default()
		c.Segmesh.Edge.RelayMaxConnsPerHost = tc.set
		c.Segmesh.Edge.ExchangeURLs = []string{"https://mail.lab.test"}
		got, err := newConfig(&c)
		if err != nil {
			t.Fatalf("relayMaxConnsPerHost %d: %v", tc.set, err)
		}
		if got.RelayMaxConnsPerHost != tc.want {
			t.Errorf("relayMaxConnsPerHost %d: %d, want %d", tc.set, got.RelayMaxConnsPerHost, tc.want)
		}
	}
}
