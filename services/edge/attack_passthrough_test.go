package edge

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
)

// closedOrRequest reads up's next request for at most wait: it returns the
// request when one came, nil when the edge closed the connection; it fails
// t when the connection stayed open and idle.
func closedOrRequest(t *testing.T, up *rawUpConn, wait time.Duration) *http.Request {
	t.Helper()
	_ = up.c.SetReadDeadline(time.Now().Add(wait))
	r, err := http.ReadRequest(up.br)
	if err == nil {
		_, _ = io.Copy(io.Discard, r.Body)
		return r
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the upstream connection stayed open and idle for %v: it is kept for other devices' requests", wait)
	}
	return nil
}

// TestAttackPassthroughConnectionAuthShared: with KCD off (the default,
// kcd.enabled false) the device's own Authorization goes to Exchange.
// NTLM, and Negotiate under IIS's default authPersistNonNTLM=true,
// authenticate the TCP connection, not the request: IIS serves later
// requests on that connection without Authorization as the user who
// authenticated it (Persistent-Auth: true). The edge's upstream pool is
// shared by every device, so the connection alice authenticated, given
// back to the pool, carried bob's next request, sent without any
// Authorization: Exchange would serve it as alice (her mailbox to bob;
// with requireClientCertificate off, to anyone on the internet). Proxies
// that pass NTLM keep such a connection private to the device's
// connection (HAProxy's private connections, Squid's connection pinning)
// or do not reuse it. Both engines.
func TestAttackPassthroughConnectionAuthShared(t *testing.T) {
	if !pollSupported {
		t.Skip("the relay needs pollReady (Linux)")
	}
	for _, e := range engines {
		for _, scheme := range []string{"NTLM TlRMTVNTUAADAAAAGAAYAEgAAAA=", "Negotiate YIIGhgYGKwYBBQUCoIIGejCCBnag", "Kerberos YIIGhgYGKwYBBQUC"} {
			t.Run(e.name+"/"+strings.Fields(scheme)[0], func(t *testing.T) {
				x := newRawExchange(t)
				h := newHarness(t, func(c *config.Config) {
					c.KCD = config.KCD{}
					c.Segmesh.Edge.HTTP1Engine = e.engine
					c.Segmesh.Edge.ExchangeURLs = []string{"http://" + x.ln.Addr().String()}
				}, options{})
				ac, bc := h.ca.issue(t, certOpts{cn: "alice"}), h.ca.issue(t, certOpts{cn: "bob"})
				alice, bob := h.device(t, &ac), h.device(t, &bc)

				alice.sendWith(syncPath, "Authorization: "+scheme+"\r\n", "<Sync/>")
				up := x.accept()
				if got := up.request().Header.Get("Authorization"); got != scheme {
					t.Fatalf("Exchange got Authorization %q, want the device's", got)
				}
				// IIS: the connection is alice's from now on.
				up.write("HTTP/1.1 200 OK\r\nPersistent-Auth: true\r\nContent-Length: 5\r\n\r\nalice")
				expectBody(t, alice, http.StatusOK, "alice")

				bob.sendWith(syncPath, "", "<Sync/>")
				if r := closedOrRequest(t, up, 3*time.Second); r != nil {
					t.Fatalf("bob's request (Authorization %q) went on the connection alice authenticated with %s: IIS serves it as alice",
						r.Header.Get("Authorization"), strings.Fields(scheme)[0])
				}
				up2 := x.accept()
				up2.request()
				up2.write(okAnswer("bob"))
				expectBody(t, bob, http.StatusOK, "bob")
			})
		}
	}
}
