package edge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
)

// TestAttackRevokedH2ConnectionAfterThe403: 4746c70 ends a revoked
// device's connection with its 403 by Connection: close, which HTTP/2
// does not carry: net/http's HTTP/2 server turns it into a graceful
// shutdown (GOAWAY) instead. The attempt: a revoked device keeps using
// its HTTP/2 connection after the 403 (the handshake that opened it
// passed before the revocation). Held: the request after the 403 is not
// served on that connection; the client has to dial again, and the new
// handshake refuses the revoked certificate.
func TestAttackRevokedH2ConnectionAfterThe403(t *testing.T) {
	h := newHarness(t, nil, options{})
	cert := h.ca.issue(t, certOpts{cn: "alice", serial: 4545})
	c := h.client(&cert, true)
	type answer struct {
		status int
		proto  int
		reused bool
		err    error
	}
	send := func() answer {
		var a answer
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { a.reused = i.Reused }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodPost, h.url(syncPath), strings.NewReader("<Sync/>"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			a.err = err
			return a
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		a.status, a.proto = resp.StatusCode, resp.ProtoMajor
		return a
	}
	if a := send(); a.err != nil || a.status != http.StatusOK || a.proto != 2 {
		t.Fatalf("first Sync over HTTP/2: %+v; want 200 over HTTP/2", a)
	}
	gen := h.edge.revocation.current()
	h.crl.revoke(h.ca, 4545)
	waitFor(t, "the new snapshot at the edge", func() bool { return h.edge.revocation.current() > gen })
	if a := send(); a.err != nil || a.status != http.StatusForbidden || !a.reused {
		t.Fatalf("the Sync after the revocation: %+v; want 403 on the same connection", a)
	}
	for i := range 3 {
		a := send()
		if a.err == nil && (a.status == http.StatusOK || a.reused) {
			t.Fatalf("request %d after the 403: %+v; the revoked device's HTTP/2 connection still serves (want it shut down, and a new handshake refused)", i+1, a)
		}
	}
}
