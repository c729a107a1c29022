package edge

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/segmesh/segmesh/pkg/config"
)

// Attacker review of the relay as the default engine (session 6, rvrelay):
// a user stealing another user's identity or answer over the shared
// upstream pool, on both HTTP/1.1 engines.

// engines are the HTTP/1.1 engines an attack runs on.
var engines = []struct{ name, engine string }{{"net/http", "net/http"}, {"relay", "relay"}}

// ticketSPN returns the service name of the ticket in a Negotiate
// Authorization value, "" when it holds none.
func ticketSPN(authz string) string {
	k5, ok := negotiateToken(authz)
	if !ok {
		return ""
	}
	return k5.APReq.Ticket.SName.PrincipalNameString()
}

// ticketCipher returns the encrypted part of the ticket in a Negotiate
// Authorization value: equal for one ticket, different across tickets.
func ticketCipher(authz string) string {
	k5, _ := negotiateToken(authz)
	return string(k5.APReq.Ticket.EncPart.Cipher)
}

// negotiateToken decodes the Kerberos token of a Negotiate Authorization
// value.
func negotiateToken(authz string) (spnego.KRB5Token, bool) {
	var k5 spnego.KRB5Token
	b64, ok := strings.CutPrefix(authz, "Negotiate ")
	if !ok {
		return k5, false
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return k5, false
	}
	var tok spnego.SPNEGOToken
	if err := tok.Unmarshal(raw); err != nil {
		return k5, false
	}
	return k5, k5.Unmarshal(tok.NegTokenInit.MechTokenBytes) == nil
}

// TestAttackRetryKeepsTheAddressedExchange: a request is addressed to
// Exchange A (its URL, its Host header, a ticket for A's SPN) when the
// outbound rule runs; a reload moves the edge to Exchange B with another
// SPN while A holds the request, and A answers 401. The 401 rule sends the
// request once more with a new ticket, for the SPN the request was
// authenticated for (requests under way keep theirs, PrepareConfig). The
// net/http engine sends it to the URL the request carries, A. The relay
// took the connection from the route in force at the retry, B, and sent B
// a request naming Host A with a fresh AP-REQ for A's service: B could
// replay that authenticator at A as the user within the replay window.
func TestAttackRetryKeepsTheAddressedExchange(t *testing.T) {
	if !pollSupported {
		t.Skip("the relay needs pollReady (Linux)")
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			xa, xb := newRawExchange(t), newRawExchange(t)
			hostA := xa.ln.Addr().String()
			h := newHarness(t, func(c *config.Config) {
				c.Segmesh.Edge.HTTP1Engine = e.engine
				c.Segmesh.Edge.ExchangeURLs = []string{"http://" + hostA}
			}, options{})
			cert := h.ca.issue(t, certOpts{cn: "alice"})
			d := h.device(t, &cert)
			d.sendWith(syncPath, "", "<Sync/>")
			up := xa.accept()
			if got := ticketSPN(up.request().Header.Get("Authorization")); got != "HTTP/mail.lab.test" {
				t.Fatalf("first request's ticket is for %q", got)
			}

			cfg := *h.cfg
			cfg.Segmesh.Edge.ExchangeURLs = []string{"http://" + xb.ln.Addr().String()}
			cfg.KCD.TargetSPN = "HTTP/newmail.lab.test"
			commit, err := h.edge.PrepareConfig(context.Background(), &cfg)
			if err != nil {
				t.Fatal(err)
			}
			commit()
			up.write("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n")

			type arrival struct {
				at string
				r  *http.Request
			}
			got := make(chan arrival, 2)
			first := up // the goroutine's own: up may become the new connection below
			go func() {
				_ = first.c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if r, err := http.ReadRequest(first.br); err == nil {
					got <- arrival{"A, the same connection", r}
				}
			}()
			var a arrival
			select {
			case a = <-got:
			case c := <-xa.conns:
				xa.conns <- c
				upA := xa.accept()
				a = arrival{"A, a new connection", upA.request()}
				up = upA
			case c := <-xb.conns:
				xb.conns <- c
				upB := xb.accept()
				r := upB.request()
				t.Fatalf("the retry went to the new Exchange B with Host %q and a ticket for %q: B holds a fresh authenticator for A's service",
					r.Host, ticketSPN(r.Header.Get("Authorization")))
			case <-time.After(10 * time.Second):
				t.Fatal("no retry reached either Exchange")
			}
			if spn := ticketSPN(a.r.Header.Get("Authorization")); a.r.Host != hostA || spn != "HTTP/mail.lab.test" {
				t.Fatalf("retry at %s: Host %q, ticket for %q", a.at, a.r.Host, spn)
			}
			up.write(okAnswer("from A"))
			expectBody(t, d, http.StatusOK, "from A")
		})
	}
}
