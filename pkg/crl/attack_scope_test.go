package crl_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

// TestAttackCRLScope: a CA signs CRLs of other scopes than "every
// certificate it issued" (RFC 5280 5.2.5 Issuing Distribution Point): an
// authority revocation list (onlyContainsCACerts), a reason partition
// (onlySomeReasons), an indirect CRL. Served at the user CRL's URL (plain
// HTTP: anyone on the path can swap it), such a CRL, genuinely signed and
// with a higher CRL number, would replace the issuer's full CRL and un-revoke
// every user certificate it listed. A CRL scoped to user certificates only,
// or naming its distribution point (what AD CS writes when asked to), covers
// device certificates and stays accepted. An unknown critical CRL extension
// is refused (RFC 5280 5.2). Attacker review of pkg/crl.
func TestAttackCRLScope(t *testing.T) {
	ca := crltest.NewCA(t, "Scope CA", t0)
	// IssuingDistributionPoint encodings (DER, implicit tags in the SEQUENCE).
	dpName := []byte{0xa0, 0x1d, 0xa0, 0x1b, 0x86, 0x19}
	dpName = append(dpName, []byte("http://pki.lab.test/a.crl")...)
	idp := func(content ...byte) []byte { return append([]byte{0x30, byte(len(content))}, content...) }
	tests := []struct {
		name    string
		ext     pkix.Extension
		refused bool
	}{
		{"authority revocation list: onlyContainsCACerts", pkix.Extension{Id: oidIDP, Critical: true, Value: idp(0x82, 0x01, 0xff)}, true},
		{"reason partition: onlySomeReasons keyCompromise", pkix.Extension{Id: oidIDP, Critical: true, Value: idp(0x83, 0x02, 0x06, 0x40)}, true},
		{"indirect CRL flag", pkix.Extension{Id: oidIDP, Critical: true, Value: idp(0x84, 0x01, 0xff)}, true},
		{"attribute certificates only", pkix.Extension{Id: oidIDP, Critical: true, Value: idp(0x85, 0x01, 0xff)}, true},
		{"unknown critical extension", pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Critical: true, Value: []byte{5, 0}}, true},
		{"user certificates only: covers devices", pkix.Extension{Id: oidIDP, Critical: true, Value: idp(0x81, 0x01, 0xff)}, false},
		{"distribution point name only (AD CS)", pkix.Extension{Id: oidIDP, Critical: true, Value: idp(dpName...)}, false},
		{"empty IDP", pkix.Extension{Id: oidIDP, Critical: true, Value: idp()}, false},
		{"unknown non-critical extension", pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 2}, Value: []byte{5, 0}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := x509.CreateRevocationList(nil, &x509.RevocationList{
				Number: big.NewInt(7), ThisUpdate: t0, NextUpdate: t0.Add(time.Hour),
				ExtraExtensions: []pkix.Extension{tt.ext},
			}, ca.Cert, ca.Key)
			if err != nil {
				t.Fatal(err)
			}
			_, err = crl.Parse(der)
			switch {
			case tt.refused && kindOf(err) != crl.KindUnsupported:
				t.Fatalf("Parse = %v (kind %v); want it refused as unsupported", err, kindOf(err))
			case !tt.refused && err != nil:
				t.Fatalf("Parse = %v; want it accepted", err)
			}
		})
	}
}

var oidIDP = asn1.ObjectIdentifier{2, 5, 29, 28}
