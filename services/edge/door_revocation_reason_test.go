package edge

import (
	"fmt"
	"log/slog"
	"math/big"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

// TestRevocationReasonLabels: the reason label of a handshake refusal
// (edge.certificates.refused, the refusal log) tells an admin which fix
// applies. A certificate of an issuer whose CRLs are held but are
// partitions that do not cover it gets "revocation_uncovered" (list its
// partition's URL), not "revocation_unknown" (no CRL of the issuer, or no
// snapshot yet), which it shared until session 7; the uncovered case is
// built through the revocation check itself.
func TestRevocationReasonLabels(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	ca := crltest.NewCA(t, "Reason CA", now)
	const urlA, urlB = "http://pki.lab.test/CertEnroll/a.crl", "http://pki.lab.test/CertEnroll/b.crl"
	c, err := crl.Parse(ca.CRL(t, crltest.CRLOptions{ThisUpdate: now.Add(-time.Minute), Partition: []string{urlB}}))
	if err != nil {
		t.Fatal(err)
	}
	r := newRevocation(revocationConfig{Enabled: true, URLs: []string{urlB}}, slog.New(slog.DiscardHandler), time.Now)
	r.set.Store(crl.NewSnapshot(1, c.Index(ca.Cert, urlB, now)))
	_, uncovered := r.check(ca.Leaf(t, big.NewInt(45), now, urlA))

	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"revoked", &RevokedError{Serial: "2a", Issuer: "CN=Reason CA"}, "revoked"},
		{"stale, fail-closed", &RevokedError{Serial: "2a", FailedClosed: true}, "revoked"},
		{"wrapped revoked", fmt.Errorf("check: %w", &RevokedError{Serial: "2a"}), "revoked"},
		{"not covered by the partitions held", uncovered, "revocation_uncovered"},
		{"issuer unknown, required", &UnknownIssuerError{Issuer: "CN=Other", CDPs: []string{urlA}}, "revocation_unknown"},
		{"no snapshot yet", errNoSnapshot, "revocation_unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := revocationReason(tc.err); got != tc.want {
				t.Fatalf("revocationReason(%v) = %q; want %q", tc.err, got, tc.want)
			}
		})
	}
}
