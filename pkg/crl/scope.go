package crl

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Object identifiers of the CRL extensions Parse judges (RFC 5280 5.2).
var (
	oidAuthorityKeyID = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCRLNumber      = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidDeltaCRL       = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidIssuingDP      = asn1.ObjectIdentifier{2, 5, 29, 28}
)

// checkScope refuses a CRL that does not cover every end-entity certificate
// of its issuer, and one with a critical extension segmesh does not know
// (RFC 5280 5.2: such a CRL must not be used). A CRL replaces its issuer's
// CRL in force when it is newer, so a genuinely signed CRL of a narrower
// scope (an authority revocation list, a reason partition, a delta CRL)
// served at the full CRL's URL would otherwise un-revoke the certificates it
// does not list. The Issuing Distribution Point may name the distribution
// point (AD CS writes it when asked to) and may say onlyContainsUserCerts;
// anything else in it is refused.
func checkScope(exts []pkix.Extension) error {
	for _, ext := range exts {
		switch {
		case ext.Id.Equal(oidDeltaCRL):
			return errors.New("delta CRL: configure the URL of the base CRL")
		case ext.Id.Equal(oidIssuingDP):
			if err := checkIssuingDP(ext.Value); err != nil {
				return err
			}
		case ext.Id.Equal(oidAuthorityKeyID), ext.Id.Equal(oidCRLNumber):
		case ext.Critical:
			return fmt.Errorf("unknown critical CRL extension %s", ext.Id)
		}
	}
	return nil
}

// checkIssuingDP refuses an Issuing Distribution Point whose CRL covers
// less than every end-entity certificate: onlyContainsCACerts [2],
// onlySomeReasons [3], indirectCRL [4], onlyContainsAttributeCerts [5].
func checkIssuingDP(v []byte) error {
	in := cryptobyte.String(v)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return errors.New("malformed issuing distribution point")
	}
	names := map[cbasn1.Tag]string{
		cbasn1.Tag(2).ContextSpecific():               "onlyContainsCACerts (an authority revocation list)",
		cbasn1.Tag(3).ContextSpecific():               "onlySomeReasons (a reason partition)",
		cbasn1.Tag(3).ContextSpecific().Constructed(): "onlySomeReasons (a reason partition)",
		cbasn1.Tag(4).ContextSpecific():               "indirectCRL",
		cbasn1.Tag(5).ContextSpecific():               "onlyContainsAttributeCerts",
	}
	for !seq.Empty() {
		var field cryptobyte.String
		var tag cbasn1.Tag
		if !seq.ReadAnyASN1(&field, &tag) {
			return errors.New("malformed issuing distribution point")
		}
		name, narrow := names[tag]
		if !narrow {
			continue // [0] distributionPoint, [1] onlyContainsUserCerts
		}
		if tag != cbasn1.Tag(3).ContextSpecific() && tag != cbasn1.Tag(3).ContextSpecific().Constructed() &&
			(len(field) == 1 && field[0] == 0) {
			continue // a BOOLEAN written FALSE: the default, harmless
		}
		return fmt.Errorf("the CRL's issuing distribution point says %s: it does not cover every certificate of its issuer; configure the URL of the issuer's full CRL", name)
	}
	return nil
}
