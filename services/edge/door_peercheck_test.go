package edge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLongLivedConnectionRechecked: a keep-alive connection used to be
// checked for revocation per request but not for the certificate's validity
// period or a trust-store change, so an expired certificate, or one whose
// CA was removed, kept working for as long as the device held the
// connection. Each case sends a Sync (200), changes the world, and sends the
// next request on the same connection.
func TestLongLivedConnectionRechecked(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, h *harness, clk *testClock)
		want   int
		reason string // in the refusal log line; "" for none
	}{
		{"certificate expires", func(t *testing.T, h *harness, clk *testClock) { clk.Add(2 * time.Hour) }, 403, "reason=expired"},
		{"its CA is removed from the trust store", func(t *testing.T, h *harness, clk *testClock) {
			other := newCA(t, "Another CA")
			h.writeTrust(t, other.pem)
		}, 403, "reason=untrusted"},
		{"another CA is added: still trusted", func(t *testing.T, h *harness, clk *testClock) {
			other := newCA(t, "Another CA")
			h.writeTrust(t, append(append([]byte{}, h.ca.pem...), other.pem...))
		}, 200, ""},
		{"time passes within the validity", func(t *testing.T, h *harness, clk *testClock) { clk.Add(30 * time.Minute) }, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &testClock{t: time.Now()}
			h := newHarness(t, nil, options{now: clk.Now})
			cert := h.ca.issue(t, certOpts{cn: "alice", serial: 4242, notAfter: time.Now().Add(time.Hour)})
			d := h.device(t, &cert)
			d.send(syncPath, "<Sync/>")
			if resp, body, err := d.read(); err != nil || resp.StatusCode != 200 {
				t.Fatalf("first Sync: %v %v %q", err, resp, body)
			}
			tt.change(t, h, clk)
			for i := range 2 {
				d.send(syncPath, "<Sync/>")
				resp, _, err := d.read()
				if err != nil {
					t.Fatalf("request %d after the change: %v", i+2, err)
				}
				if resp.StatusCode != tt.want {
					t.Fatalf("request %d after the change: status %d, want %d", i+2, resp.StatusCode, tt.want)
				}
				if tt.want == 403 {
					// The refusal sticks to the connection: the edge ends
					// it with the answer (Connection: close).
					if !resp.Close {
						t.Fatal("the refusal keeps the connection open")
					}
					if _, _, err := d.read(); err == nil {
						t.Fatal("the connection serves after the refusal")
					}
					break
				}
			}
			if tt.reason != "" && !strings.Contains(h.logs.String(), tt.reason) {
				t.Fatalf("no refusal with %s logged:\n%s", tt.reason, h.logs)
			}
		})
	}
}

// TestParkedPingCertificateExpires: a Ping held past its certificate's end
// gets the refusal, not Exchange's answer.
func TestParkedPingCertificateExpires(t *testing.T) {
	clk := &testClock{t: time.Now()}
	h := newHarness(t, nil, options{now: clk.Now})
	hd := newHeld()
	t.Cleanup(hd.let)
	h.exchange.handler = hd.handler
	cert := h.ca.issue(t, certOpts{cn: "alice", serial: 4242, notAfter: time.Now().Add(time.Hour)})
	d := h.device(t, &cert)
	d.send(pingPath, "<Ping/>")
	waitFor(t, "Ping parked", func() bool { return h.edge.parking.len() == 1 && hd.entered.Load() == 1 })
	clk.Add(2 * time.Hour)
	hd.let()
	resp, body, err := d.read()
	if err != nil || resp.StatusCode != 403 || strings.Contains(body, "pong") {
		t.Fatalf("Ping answer after the certificate expired: %v %v %q, want 403", err, resp, body)
	}
}

// writeTrust replaces the device trust store file and reloads it.
func (h *harness) writeTrust(t testing.TB, pemData []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, "device-ca.pem"), pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.edge.ReloadTrust(); err != nil {
		t.Fatal(err)
	}
}
