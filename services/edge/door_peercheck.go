package edge

import (
	"crypto/x509"
	"errors"
	"time"

	"github.com/segmesh/segmesh/pkg/trust"
)

// verifiedChain is what verifying a device's chain established.
type verifiedChain struct {
	// notAfter is the earliest NotAfter on the verified chain.
	notAfter time.Time
	// store is the trust snapshot the chain was verified against.
	store *trust.Store
}

// recheckPeer keeps a long-lived connection (keep-alive, HTTP/2, a Ping
// handed back) to the rules a new handshake would meet: the certificate
// chain must still be within its validity period and trusted by the
// current trust store. Per request it is two compares (the clock against
// the chain's earliest NotAfter, the trust snapshot against the one the
// chain was verified with); only when either changed does it verify the
// chain again. A refusal sticks to the connection.
func (s *Service) recheckPeer(devCert *peer) *CertificateRefusal {
	if r := devCert.gone.Load(); r != nil {
		return r
	}
	now := s.now()
	st := s.trust.current()
	if st == devCert.trusted.Load() && now.UnixNano() < devCert.validUntil.Load() {
		return nil
	}
	v, err := s.trust.verifyClient(devCert.chain, now)
	if err != nil {
		r := refusal(peerRefusalReason(err), devCert.leaf, err)
		if devCert.gone.CompareAndSwap(nil, r) {
			s.refused(r)
		}
		return devCert.gone.Load()
	}
	devCert.validUntil.Store(v.notAfter.UnixNano())
	devCert.trusted.Store(v.store)
	return nil
}

// peerRefusalReason labels a re-verification failure: expired when the
// chain's validity ended since the handshake, untrusted otherwise.
func peerRefusalReason(err error) string {
	var ve *trust.VerifyError
	if errors.As(err, &ve) && ve.Reason == trust.ReasonExpired {
		return "expired"
	}
	return "untrusted"
}

// earliestNotAfter returns the earliest NotAfter in chain (zero for none).
func earliestNotAfter(chain []*x509.Certificate) time.Time {
	var t time.Time
	for i, c := range chain {
		if i == 0 || c.NotAfter.Before(t) {
			t = c.NotAfter
		}
	}
	return t
}
