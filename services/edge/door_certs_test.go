package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"
)

// The front door (door_tls.go, door_trust.go, door_revocation.go) end to
// end: which client certificates it refuses, and how a revocation or a
// trust-store reload reaches a connection already open.

// refusedOrForbidden reports whether the request was refused in the handshake
// (an error) or answered 403.
func refusedOrForbidden(t testing.TB, c *http.Client, url string) bool {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return true
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusForbidden
}

func TestClientCertificatesRefused(t *testing.T) {
	h := newHarness(t, nil, options{})
	other := newCA(t, "Rogue CA")
	tests := []struct {
		name   string
		cert   func() *tls.Certificate
		reason string
	}{
		{"no certificate", func() *tls.Certificate { return nil }, "reason=no_certificate"},
		{"untrusted CA", func() *tls.Certificate { c := other.issue(t, certOpts{cn: "mallory"}); return &c }, "reason=untrusted"},
		{"expired", func() *tls.Certificate {
			c := h.ca.issue(t, certOpts{cn: "old", notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)})
			return &c
		}, "expired"},
		{"server EKU only", func() *tls.Certificate {
			c := h.ca.issue(t, certOpts{cn: "srv", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			return &c
		}, "client authentication"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.exchange.requests.Load()
			if !refusedOrForbidden(t, h.client(tt.cert(), false), h.url(syncPath)) {
				t.Fatal("request was served")
			}
			if h.exchange.requests.Load() != before {
				t.Fatal("a refused request reached Exchange")
			}
			waitFor(t, "refusal log "+tt.reason, func() bool { return strings.Contains(h.logs.String(), tt.reason) })
		})
	}
}

func TestRevokedCertificateRefused(t *testing.T) {
	h := newHarness(t, nil, options{})
	good := h.ca.issue(t, certOpts{cn: "alice", serial: 0x1001})
	bad := h.ca.issue(t, certOpts{cn: "eve", serial: 0xbad})
	c := h.client(&good, false)
	if resp, body := get(t, c, h.url(syncPath), nil); resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	gen := h.edge.revocation.current()
	h.crl.revoke(h.ca, 0xbad, 0x1001)
	waitFor(t, "new snapshot", func() bool { return h.edge.revocation.current() > gen })

	// A new connection with a revoked certificate is refused in the handshake.
	if !refusedOrForbidden(t, h.client(&bad, false), h.url(syncPath)) {
		t.Fatal("revoked certificate served")
	}
	waitFor(t, "revocation log", func() bool {
		l := h.logs.String()
		return strings.Contains(l, "reason=revoked") && strings.Contains(l, "serial=bad") && strings.Contains(l, `issuer="CN=Device CA,O=segmesh test"`)
	})
	// The open connection of a certificate revoked after it connected gets 403.
	resp, _ := get(t, c, h.url(syncPath), nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("revoked-after-connect status %d, want 403", resp.StatusCode)
	}
}

func TestTrustReloadKeepsOpenConnection(t *testing.T) {
	h := newHarness(t, nil, options{})
	oldCert := h.ca.issue(t, certOpts{cn: "alice"})
	c := h.client(&oldCert, false)
	var reused []bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }}
	do := func() int {
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, h.url(syncPath), nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := do(); s != 200 {
		t.Fatalf("status %d", s)
	}
	// Add a new CA and reload: the open connection is kept and still served.
	newTrustCA := newCA(t, "New Device CA")
	writeFile(t, h.dir, "device-ca.pem", append(append([]byte{}, h.ca.pem...), newTrustCA.pem...))
	if err := h.edge.reloader.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := do(); s != 200 {
		t.Fatalf("open connection after reload: status %d", s)
	}
	if len(reused) != 2 || !reused[1] {
		t.Fatalf("connection was not kept: reused = %v", reused)
	}
	// Replace the trust store with the new CA only: the open connection of
	// a certificate from the removed CA is refused from its next request.
	writeFile(t, h.dir, "device-ca.pem", newTrustCA.pem)
	if err := h.edge.reloader.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := do(); s != http.StatusForbidden {
		t.Fatalf("open connection after its CA was removed: status %d, want 403", s)
	}
	// New connections follow the new trust.
	if !refusedOrForbidden(t, h.client(&oldCert, false), h.url(syncPath)) {
		t.Fatal("old CA still trusted for new connections")
	}
	newCert := newTrustCA.issue(t, certOpts{cn: "bob"})
	if resp, _ := get(t, h.client(&newCert, false), h.url(syncPath), nil); resp.StatusCode != 200 {
		t.Fatalf("new CA: status %d", resp.StatusCode)
	}
}

func TestResumedSessionIsVerifiedAgain(t *testing.T) {
	h := newHarness(t, nil, options{})
	cert := h.ca.issue(t, certOpts{cn: "alice", serial: 0x77})
	pool := x509.NewCertPool()
	pool.AddCert(h.serverCA.cert)
	cache := tls.NewLRUClientSessionCache(4)
	dial := func() (*tls.Conn, error) {
		c, err := tls.Dial("tcp", h.edge.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "edge.lab.test",
			Certificates: []tls.Certificate{cert}, ClientSessionCache: cache, MaxVersion: tls.VersionTLS12})
		if err != nil {
			return nil, err
		}
		// The server's verdict arrives with its first answer.
		_, _ = c.Write([]byte("OPTIONS /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: x\r\n\r\n"))
		buf := make([]byte, 12)
		_, err = c.Read(buf)
		return c, err
	}
	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if c, err = dial(); err != nil {
		t.Fatal(err)
	}
	if !c.ConnectionState().DidResume {
		t.Fatal("the second connection did not resume; the test would prove nothing")
	}
	c.Close()
	h.crl.revoke(h.ca, 0x77)
	waitFor(t, "snapshot", func() bool { return h.edge.revocation.current() >= 2 })
	c, err = dial()
	if err == nil {
		resumed := c.ConnectionState().DidResume
		c.Close()
		t.Fatalf("revoked certificate accepted on a resumed session (resumed=%v)", resumed)
	}
	if !strings.Contains(h.logs.String(), "serial=77") {
		t.Fatal("refusal of the resumed session not logged with the serial")
	}
}
