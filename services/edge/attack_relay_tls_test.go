package edge

import (
	"crypto/tls"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// TestAttackRelayTLSAnswerNobodyAskedFor: over TLS (Exchange is https),
// an answer nobody asked for that Exchange sends in the same TLS record as
// the end of an answer is decrypted into the TLS connection's own buffer
// when the relay reads the body's last bytes: not in the relay's bufio
// reader (put's check) and no longer in the socket (fresh's poll). The
// connection was kept and the next request, another user's, was answered
// with those bytes (response queue poisoning: the answers of one user's
// requests go to another's from then on). http.Transport's read loop
// peeks while idle and drops such a connection. Attacker review (review2).
func TestAttackRelayTLSAnswerNobodyAskedFor(t *testing.T) {
	if !pollSupported {
		t.Skip("the relay needs pollReady (Linux)")
	}
	ts := httptest.NewTLSServer(http.NotFoundHandler()) // for its certificate
	t.Cleanup(ts.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x := &rawExchange{t: t, ln: tls.NewListener(ln, &tls.Config{Certificates: ts.TLS.Certificates, DynamicRecordSizingDisabled: true}),
		conns: make(chan net.Conn, 16)}
	go func() {
		for {
			c, err := x.ln.Accept()
			if err != nil {
				return
			}
			x.conns <- c
		}
	}()
	t.Cleanup(func() { _ = x.ln.Close() })
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	h := newHarness(t, func(c *config.Config) {
		c.Segmesh.Edge.HTTP1Engine = "relay"
		c.Segmesh.Edge.ExchangeURLs = []string{"https://" + ln.Addr().String()}
		c.Segmesh.Edge.ExchangeCAFile = writeFile(t, t.TempDir(), "exchange-ca.pem", caPEM)
	}, options{})
	alice := h.ca.issue(t, certOpts{cn: "alice"})
	bob := h.ca.issue(t, certOpts{cn: "bob"})
	da, db := h.device(t, &alice), h.device(t, &bob)

	// Kept alive over TLS: the check below does not cost the reuse.
	da.sendWith(syncPath, "", "<Sync/>")
	up := x.accept()
	up.request()
	up.write(okAnswer("one"))
	expectBody(t, da, http.StatusOK, "one")
	kept(t, h)
	da.sendWith(syncPath, "", "<Sync/>")
	up.request()
	up.write(okAnswer("two"))
	expectBody(t, da, http.StatusOK, "two")
	x.noNewConn()
	kept(t, h)

	big := strings.Repeat("a", 10000)
	da.sendWith(syncPath, "", "<Sync/>")
	up.request()
	up.write(okAnswer(big) + okAnswer("STOLEN")) // one TLS record
	expectBody(t, da, http.StatusOK, big)
	kept(t, h)

	db.sendWith(syncPath, "", "<Sync/>")
	got := make(chan string, 1)
	go func() {
		_, body, err := db.read()
		if err != nil {
			body = "error: " + err.Error()
		}
		got <- body
	}()
	select {
	case body := <-got:
		t.Fatalf("bob was answered %q without Exchange seeing his request: the bytes after alice's answer", body)
	case c := <-x.conns:
		x.conns <- c
		up2 := x.accept()
		up2.request()
		up2.write(okAnswer("bob's answer"))
		if body := <-got; body != "bob's answer" {
			t.Fatalf("bob got %q", body)
		}
	}
}
