package diagnose

import (
	"context"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
)

// panicky is a CDP client's transport that panics on the requests to the
// distribution point at path, in RoundTrip or while its body is read, as
// a parser or client meeting bytes it did not expect would; other
// requests go to the network.
type panicky struct {
	path   string
	inBody bool
}

func (p panicky) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path != p.path {
		return http.DefaultTransport.RoundTrip(r)
	}
	if !p.inBody {
		panic("runtime error: index out of range [7] with length 7")
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(panickyReader{}), Request: r}, nil
}

type panickyReader struct{}

func (panickyReader) Read([]byte) (int, error) {
	panic("runtime error: slice bounds out of range " + strings.Repeat("x", 4096))
}

// TestAttackPanicOnACRL (ipanic3, attacker review item b): the revocation
// step fetches and parses each distribution point's CRL without a
// recover, so a CRL that panicked the fetch or the parser (crl.Parse,
// Verify, Index) ended `segmesh diagnose` with a stack instead of a
// finding; on main this test crashed the test binary (panic in the
// revocation step). Now it is that distribution point's problem, code
// crl_panic with its fix, naming the URL and the panic's value cut to
// telemetry.MaxPanicValue bytes; the other distribution points are still
// checked, and a certificate one of them lists is still the answer.
func TestAttackPanicOnACRL(t *testing.T) {
	tests := []struct {
		name    string
		inBody  bool
		revoked bool // the good distribution point lists the certificate
		code    string
	}{
		{"in the request", false, false, "crl_panic"},
		{"reading the CRL", true, false, "crl_panic"},
		{"a listed certificate is still the answer", false, true, "revoked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			if tc.revoked {
				w.revoked = []testpki.Revoked{{Serial: big.NewInt(42), At: time.Now().Add(-time.Minute)}}
			}
			good := w.cfg.Gateway.CRLURIs[0]
			bad := strings.TrimSuffix(good, "/ca.crl") + "/bad.crl"
			w.cfg.Gateway.CRLURIs = []string{bad, good}
			rep := Run(context.Background(), Options{Config: w.cfg, CertPEM: w.leaf(t, "alice@test.realm", 42, w.ca), StepTimeout: 5 * time.Second,
				Fetcher: &fetch.Fetcher{Client: &http.Client{Transport: panicky{path: "/bad.crl", inBody: tc.inBody}}}})
			if rep.FailedStep != StepRevocation {
				t.Fatalf("failed step %q, want %s: %+v", rep.FailedStep, StepRevocation, rep.Steps)
			}
			s := rep.Steps[2]
			if s.Code != tc.code {
				t.Fatalf("code %q, want %q (cause %s)", s.Code, tc.code, s.Cause)
			}
			if tc.revoked {
				return
			}
			if !strings.Contains(s.Cause, bad) || !strings.Contains(s.Cause, "out of range") || !strings.Contains(s.Fix, "segmesh's maintainers") {
				t.Fatalf("cause %q fix %q: want the URL, the panic's value and the maintainers", s.Cause, s.Fix)
			}
			if len(s.Cause) > 1024 {
				t.Fatalf("cause of %d bytes: the panic's value is not cut", len(s.Cause))
			}
		})
	}
}

// TestAttackPanicOnTheOnlyCRL (rvpanic3, review of c63189f): checkCRL's
// recover turns a panic into that distribution point's problem. Could it
// turn a revoked certificate into "not revoked" when the CRL that lists it
// is the one that panics? It held: with no other CRL of the issuer the
// step fails, crl_panic (or the edge's refusal of an issuer without a CRL
// under useCertificateCdps), never a pass.
func TestAttackPanicOnTheOnlyCRL(t *testing.T) {
	tests := []struct {
		name     string
		fromCert bool // segmesh.crl.useCertificateCdps
		code     string
	}{
		{"the configured distribution point", false, "crl_panic"},
		{"under useCertificateCdps", true, "crl_unknown_issuer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.revoked = []testpki.Revoked{{Serial: big.NewInt(42), At: time.Now().Add(-time.Minute)}}
			w.cfg.Segmesh.CRL.UseCertificateCDPs = tc.fromCert
			for _, inBody := range []bool{false, true} {
				rep := Run(context.Background(), Options{Config: w.cfg, CertPEM: w.leaf(t, "alice@test.realm", 42, w.ca), StepTimeout: 5 * time.Second,
					Fetcher: &fetch.Fetcher{Client: &http.Client{Transport: panicky{path: "/ca.crl", inBody: inBody}}}})
				if s := rep.Steps[2]; rep.OK || rep.FailedStep != StepRevocation || s.Status != StatusFail || s.Code != tc.code {
					t.Fatalf("panic in the body %v: failed step %q, revocation %s code %q (%s), want failed with %s", inBody, rep.FailedStep, s.Status, s.Code, s.Detail+s.Cause, tc.code)
				}
			}
		})
	}
}
