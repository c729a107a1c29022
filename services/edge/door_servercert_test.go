package edge

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
)

// TestServerCertificateRotatedInPlace renews the edge's certificate under
// the same paths while a request is held and a keep-alive connection is
// open: the held request is answered, the open connection keeps the
// certificate it was opened with, a new connection gets the new one, and a
// certificate written with another certificate's key is refused with the
// reason while the new one stays in force.
func TestServerCertificateRotatedInPlace(t *testing.T) {
	h := newHarness(t, nil, options{})
	held, release := holdAt(t, h.exchange, byHoldHeader, "ok")
	device := h.ca.issue(t, certOpts{cn: "alice"})
	serial := func(resp *http.Response) int64 {
		t.Helper()
		if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
			t.Fatal("no server certificate on the response")
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	keepAlive := h.client(&device, false)
	resp, _ := get(t, keepAlive, h.url(syncPath), nil)
	oldSerial := serial(resp)
	heldDone := make(chan int, 1)
	go func() {
		resp, _ := get(t, h.client(&device, false), h.url(syncPath), map[string]string{"X-Hold": "1"})
		heldDone <- resp.StatusCode
	}()
	<-held

	renewed := h.serverCA.issue(t, certOpts{cn: "edge.lab.test", serial: oldSerial + 1000,
		eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, dns: []string{"edge.lab.test"}})
	writeFile(t, h.dir, "edge.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: renewed.Certificate[0]}))
	writeFile(t, h.dir, "edge.key", keyPEM(t, renewed))
	commit, err := h.edge.PrepareConfig(context.Background(), h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, h.client(&device, false), h.url(syncPath), nil); serial(resp) != oldSerial {
		t.Fatalf("prepared, not committed: a new connection got serial %d, want the old %d", serial(resp), oldSerial)
	}
	commit()
	if resp, body := get(t, h.client(&device, false), h.url(syncPath), nil); resp.StatusCode != http.StatusOK || serial(resp) != oldSerial+1000 {
		t.Fatalf("a new connection after the rotation: %d %q serial %d, want 200 with serial %d", resp.StatusCode, body, serial(resp), oldSerial+1000)
	}
	if resp, _ := get(t, keepAlive, h.url(syncPath), nil); resp.StatusCode != http.StatusOK || serial(resp) != oldSerial {
		t.Errorf("the open connection: %d serial %d, want 200 on the certificate it was opened with (%d)", resp.StatusCode, serial(resp), oldSerial)
	}
	release()
	if code := <-heldDone; code != http.StatusOK {
		t.Fatalf("held request: %d, want 200", code)
	}

	// Another certificate's key: refused, the renewed certificate stays.
	other := h.serverCA.issue(t, certOpts{cn: "edge.lab.test", serial: oldSerial + 2000,
		eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, dns: []string{"edge.lab.test"}})
	writeFile(t, h.dir, "edge.key", keyPEM(t, other))
	if _, err := h.edge.PrepareConfig(context.Background(), h.cfg); err == nil || !strings.Contains(err.Error(), "server certificate in use stays") {
		t.Fatalf("PrepareConfig with a mismatched key = %v, want a refusal", err)
	}
	if resp, _ := get(t, h.client(&device, false), h.url(syncPath), nil); serial(resp) != oldSerial+1000 {
		t.Fatalf("after a refused pair: serial %d, want the renewed %d", serial(resp), oldSerial+1000)
	}
}
