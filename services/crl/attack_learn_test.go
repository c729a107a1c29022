package crl

import (
	"bytes"
	"context"
	"math/big"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

// TestAttackLearnForgedIssuer: with segmesh.crl.useCertificateCdps the crl
// role fetches the distribution points a device certificate names. A
// certificate whose issuer NAME is the trusted CA's, but signed by another
// key (anyone can mint one), must not make the role fetch its URLs: that
// would be a request to any host the attacker names (metadata services,
// internal hosts) from inside the network. Attacker review; held.
func TestAttackLearnForgedIssuer(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t)
	cfg.URLs = nil
	cfg.UseCertificateCDPs = true
	s := f.service(t, cfg)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	twin := crltest.NewCA(t, "Lab CA", f.now) // same name, another key
	if !bytes.Equal(twin.Cert.RawSubject, f.ca.Cert.RawSubject) {
		t.Fatal("the twin CA's name differs; the test needs the same name")
	}
	for _, u := range []string{"http://169.254.169.254/latest/meta-data/x.crl", f.cdp.srv.URL + "/forged.crl"} {
		forged := twin.Leaf(t, big.NewInt(7), f.now, u)
		if _, _, known, _ := s.Check(forged); known {
			t.Fatalf("the forged certificate's issuer is known")
		}
	}
	for _, st := range s.refresher.Status() {
		if strings.Contains(st.URL, "169.254") || strings.Contains(st.URL, "forged") {
			t.Fatalf("a distribution point of a certificate no trusted CA signed was added: %s", st.URL)
		}
	}
}
