package edge

import (
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testmetric"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// panickingTrust panics on the chain of a device whose certificate's CN is
// boom, as a parser meeting a certificate it did not expect would; other
// chains go to the real trust source.
type panickingTrust struct{ trustSource }

func (p panickingTrust) verifyClient(chain []*x509.Certificate, now time.Time) (verifiedChain, error) {
	if len(chain) > 0 && chain[0].Subject.CommonName == "boom" {
		panic("unexpected extension in " + chain[0].Subject.CommonName + "'s certificate")
	}
	return p.trustSource.verifyClient(chain, now)
}

// TestAttackPanicInTheHandshake: the handshake's callbacks (trust,
// revocation, distribution-point learning) run on a device's certificate
// in net/http's connection goroutine, before any handler, so the device
// handler's recovery (panicRecovery) does not cover them. net/http
// recovered such a panic but reported it on the server's ErrorLog, which
// the edge keeps at debug level with the failed TLS handshakes: nothing
// logged at error level, nothing counted (this test failed on main on
// both). Now the handshake is refused (fail closed), the panic is logged
// at error level with its stack and counted in
// segmesh_edge_handler_panics, and the next device is served.
func TestAttackPanicInTheHandshake(t *testing.T) {
	h := newHarness(t, nil, options{wrapTrust: func(ts trustSource) trustSource { return panickingTrust{ts} }})
	reader := recordMetrics(t, h)

	boom := h.ca.issue(t, certOpts{cn: "boom"})
	resp, err := h.client(&boom, false).Get(h.url(syncPath))
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		t.Fatalf("a handshake whose check panicked was accepted: %s %q", resp.Status, body)
	}
	if strings.Contains(err.Error(), "unexpected extension") {
		t.Fatalf("the device learnt the panic's value: %v", err)
	}
	waitFor(t, "the panic logged at error level", func() bool {
		return strings.Contains(h.logs.String(), `level=ERROR msg="a device's TLS handshake caused a panic in the edge`)
	})
	logs := h.logs.String()
	if !strings.Contains(logs, "in=VerifyConnection") || !strings.Contains(logs, "recoverHandshake") {
		t.Fatalf("the error line names neither the callback nor the stack:\n%s", logs)
	}
	if n := testmetric.Sum(t, reader, telemetry.MetricEdgeHandlerPanics); n != 1 {
		t.Fatalf("%s = %d, want 1", telemetry.MetricEdgeHandlerPanics, n)
	}

	alice := h.ca.issue(t, certOpts{cn: "alice"})
	if resp, body := get(t, h.client(&alice, false), h.url(syncPath), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("alice after the panic: %s %q", resp.Status, body)
	}
}
