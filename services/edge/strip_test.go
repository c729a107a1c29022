package edge

import (
	"net/http"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/negotiate/negotiatetest"
)

// TestResponseAuthHeadersStripped: with KCD, Exchange's authentication
// headers (its mutual-authentication "WWW-Authenticate: Negotiate <AP-REP>"
// on a 200, any challenge) and its Server header do not reach the device: a
// device that sees Negotiate may start a Kerberos exchange of its own, and
// Server names Exchange's software to anyone with a certificate.
func TestResponseAuthHeadersStripped(t *testing.T) {
	h := newHarness(t, nil, options{})
	h.exchange.handler = func(w http.ResponseWriter, r *http.Request, user string) {
		w.Header().Set("Server", "Microsoft-IIS/10.0")
		w.Header().Add("WWW-Authenticate", "Negotiate") // a challenge without a token
		w.Header().Add("WWW-Authenticate", "NTLM")
		w.Header().Set("Persistent-Auth", "true")
		w.WriteHeader(http.StatusOK)
	}
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	resp, body := get(t, h.client(&cert, false), h.url(syncPath), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, k := range []string{"Server", "WWW-Authenticate", "Persistent-Auth"} {
		if v := resp.Header.Values(k); len(v) != 0 {
			t.Errorf("%s reached the device: %q", k, v)
		}
	}
}

// TestMutualReplyVerified: Exchange's AP-REP (WWW-Authenticate: Negotiate
// on a 200) is checked against the ticket's session key and the
// authenticator's time; a reply that does not match is not delivered (502),
// one that matches is delivered without the header.
func TestMutualReplyVerified(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(*types.EncryptionKey, *int)
		want   int
	}{
		{"matching", func(*types.EncryptionKey, *int) {}, http.StatusOK},
		{"another microsecond", func(_ *types.EncryptionKey, cusec *int) { *cusec = (*cusec + 1) % 1000000 }, http.StatusBadGateway},
		{"another key", func(k *types.EncryptionKey, _ *int) { k.KeyValue = make([]byte, 32) }, http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil, options{})
			fx := h.exchange
			fx.handler = func(w http.ResponseWriter, r *http.Request, user string) {
				fx.mu.Lock()
				key, ctime, cusec := fx.lastKey, fx.lastTime, fx.lastCusec
				fx.mu.Unlock()
				tc.tamper(&key, &cusec)
				v, err := negotiatetest.MutualReply(key, ctime, cusec)
				if err != nil {
					t.Error(err)
				}
				w.Header().Set("WWW-Authenticate", v)
				_, _ = w.Write([]byte("mail for " + user))
			}
			cert := h.ca.issue(t, certOpts{cn: "alice"})
			resp, body := get(t, h.client(&cert, false), h.url(syncPath), nil)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			if resp.Header.Get("WWW-Authenticate") != "" || tc.want != http.StatusOK && strings.Contains(body, "mail for") {
				t.Fatalf("the reply or Exchange's body reached the device: %v %q", resp.Header, body)
			}
		})
	}
}
