package edge

import (
	"net/http"
	"testing"
)

// TestAttackInformationalCarriesAuthHeaders: with KCD, Exchange's
// WWW-Authenticate (a Negotiate AP-REP, a challenge the device cannot
// answer) and Persistent-Auth never reach the device, and Server never
// does (modifyResponse; docs/reliability.md). That rule read the final
// answer only: an informational answer before it (103 Early Hints, 102)
// went to the device with those headers on every path (the reverse
// proxy's Got1xxResponse, the relay, a parked Ping). The informational
// answer now passes the same header rule. Attacker review rvrelay.
func TestAttackInformationalCarriesAuthHeaders(t *testing.T) {
	onBothPaths(t, nil, func(t *testing.T, p policyPath, h *harness) {
		h.exchange.handler = func(w http.ResponseWriter, r *http.Request, _ string) {
			hd := w.Header()
			hd.Set("Link", "</a>")
			hd.Set("Server", "Microsoft-IIS/10.0")
			hd.Set("Www-Authenticate", "Negotiate oYGgMIGdoAMKAQChCwYJKoZIgvcSAQIC")
			hd.Set("Persistent-Auth", "true")
			w.WriteHeader(http.StatusEarlyHints)
			for _, k := range []string{"Link", "Server", "Www-Authenticate", "Persistent-Auth"} {
				hd.Del(k)
			}
			_, _ = w.Write([]byte("final"))
		}
		cert := h.ca.issue(t, certOpts{cn: "alice"})
		d := h.device(t, &cert)
		d.send(p.path, "<x/>")
		resp, _, err := d.read()
		if err != nil || resp.StatusCode != http.StatusEarlyHints || resp.Header.Get("Link") != "</a>" {
			t.Fatalf("first answer %v %v, want the 103 with its Link", resp, err)
		}
		for _, k := range []string{"Server", "Www-Authenticate", "Persistent-Auth"} {
			if v := resp.Header.Get(k); v != "" {
				t.Errorf("the 103 reached the device with %s: %q", k, v)
			}
		}
		final, body, err := d.read()
		if err != nil || final.StatusCode != http.StatusOK || body == "" {
			t.Fatalf("final answer %v %q %v", final, body, err)
		}
	})
}
