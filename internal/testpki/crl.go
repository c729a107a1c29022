package testpki

import (
	"testing"

	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

// Revoked is one CRL entry: a serial, its revocation time and CRLReason.
type Revoked = crltest.Revoked

// CRLOptions describe a CRL: its number, thisUpdate, nextUpdate (a day
// after thisUpdate when zero) and entries.
type CRLOptions = crltest.CRLOptions

// CRL returns a DER CRL signed by c, made by x509.CreateRevocationList.
// pkg/crl/crltest signs it, so the two packages mint CRLs one way; crltest
// also builds the million-entry CRLs of the benchmarks.
func (c *Cert) CRL(tb testing.TB, o CRLOptions) []byte {
	tb.Helper()
	return (&crltest.CA{Cert: c.Cert, Key: c.Key}).CRL(tb, o)
}
