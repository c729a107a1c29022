package crl_test

import (
	"bytes"
	"crypto/x509"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

// FuzzParse checks Parse against x509.ParseRevocationList: whatever Parse
// accepts, the standard library accepts with the same header and entries;
// whatever the standard library accepts, Parse accepts unless it is a kind
// segmesh refuses on purpose.
func FuzzParse(f *testing.F) {
	ca := crltest.NewCA(f, "Fuzz CA", t0)
	der := ca.CRL(f, crltest.CRLOptions{Number: 3, ThisUpdate: t0, Revoked: []crltest.Revoked{
		{Serial: big.NewInt(1), At: t0, Reason: 1},
		{Serial: new(big.Int).SetBytes([]byte{0x80, 0, 1}), At: time.Date(2060, 1, 1, 0, 0, 0, 0, time.UTC)},
	}})
	f.Add(der)
	f.Add(crltest.PEM(der))
	f.Add(ca.CRL(f, crltest.CRLOptions{ThisUpdate: t0}))
	f.Add(ca.LargeCRL(f, 3, 2, t0, t0.Add(time.Hour)))
	f.Add([]byte{0x30, 0x03, 0x30, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := crl.Parse(data)
		der, derr := crl.Decode(data)
		if derr != nil {
			if err == nil {
				t.Fatalf("Parse accepted what Decode refuses: %v", derr)
			}
			return
		}
		want, serr := x509.ParseRevocationList(der)
		if err != nil {
			if serr == nil && kindOf(err) != crl.KindUnsupported && !strings.Contains(err.Error(), "data after the revoked certificates") {
				t.Fatalf("Parse refused what x509 accepts: %v", err)
			}
			return
		}
		if serr != nil {
			t.Fatalf("Parse accepted what x509 refuses: %v", serr)
		}
		h := c.Header
		if !bytes.Equal(h.RawIssuer, want.RawIssuer) || !h.ThisUpdate.Equal(want.ThisUpdate) ||
			!h.NextUpdate.Equal(want.NextUpdate) || !bytes.Equal(h.RawTBSRevocationList, want.RawTBSRevocationList) ||
			!bytes.Equal(h.Signature, want.Signature) || h.SignatureAlgorithm != want.SignatureAlgorithm ||
			(h.Number == nil) != (want.Number == nil) || h.Number != nil && h.Number.Cmp(want.Number) != 0 {
			t.Fatalf("header differs from x509.ParseRevocationList")
		}
		ix := c.Index(nil, "", time.Time{})
		unique := map[string]bool{}
		for _, e := range want.RevokedCertificateEntries {
			if e.SerialNumber.Sign() < 0 {
				continue
			}
			key := string(e.SerialNumber.Bytes())
			first := !unique[key]
			unique[key] = true
			got, ok := ix.Lookup(e.SerialNumber)
			if !ok {
				t.Fatalf("serial %x missing", e.SerialNumber)
			}
			reason := e.ReasonCode
			if reason < 0 || reason > 254 {
				reason = 255
			}
			if first && (got.RevokedAt.Unix() != e.RevocationTime.Unix() || got.Reason != reason) {
				t.Fatalf("serial %x: got %+v, want %v reason %d", e.SerialNumber, got, e.RevocationTime, e.ReasonCode)
			}
		}
		if ix.Len() != len(unique) {
			t.Fatalf("Len = %d, want %d distinct serials", ix.Len(), len(unique))
		}
	})
}
