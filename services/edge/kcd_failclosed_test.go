package edge

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/negotiate"
)

// brokenNegotiator cannot build a header (an unusable session key, say).
type brokenNegotiator struct{}

func (brokenNegotiator) header(negotiate.Binding) (string, time.Time, error) {
	return "", time.Time{}, errors.New("encrypt authenticator: unsupported etype 99")
}

func (brokenNegotiator) verifyReply(string, time.Time) error { return nil }

func brokenFactory(*Ticket) (negotiator, error) { return brokenNegotiator{}, nil }

// TestNoNegotiateHeaderNoRequest: when the Negotiate header could not be
// built, the request used to go to Exchange with no Authorization over the
// shared upstream pool (where IIS may still hold another user's
// authentication on the connection). It must get 503 with the reason and
// never reach Exchange, on the proxy path and on the parked-Ping path.
func TestNoNegotiateHeaderNoRequest(t *testing.T) {
	for _, path := range []string{syncPath, pingPath} {
		t.Run(strings.TrimPrefix(path, "/Microsoft-Server-ActiveSync?"), func(t *testing.T) {
			h := newHarness(t, nil, options{negotiator: brokenFactory})
			cert := h.ca.issue(t, certOpts{cn: "alice", serial: 4242})
			d := h.device(t, &cert)
			d.send(path, "<Ping/>")
			resp, _, err := d.read()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("status %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			if n := h.exchange.requests.Load(); n != 0 {
				t.Fatalf("Exchange saw %d requests without the edge's Negotiate header", n)
			}
			waitFor(t, "access-log line with the reason", func() bool {
				return strings.Contains(h.logs.String(), "no Kerberos header could be built") && strings.Contains(h.logs.String(), "unsupported etype 99")
			})
		})
	}
}
