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

// checkScope refuses a CRL that segmesh cannot apply correctly, and one
// with a critical extension it does not know (RFC 5280 5.2: such a CRL must
// not be used), and returns the scope of the one it can ([Meta.Partition];
// partition.go). A CRL is held per issuer and scope, and the newer of two
// CRLs of one scope replaces the older, so a CRL whose scope segmesh did
// not tell apart (an authority revocation list, a reason partition, a delta
// CRL), genuinely signed and served at the full CRL's URL, would otherwise
// un-revoke the certificates it does not list. The Issuing Distribution
// Point may name the distribution point (a partition; AD CS writes it when
// asked to) and may say onlyContainsUserCerts; anything else in it is
// refused.
func checkScope(exts []pkix.Extension) (string, error) {
	part := ""
	for _, ext := range exts {
		switch {
		case ext.Id.Equal(oidDeltaCRL):
			return "", errors.New("delta CRL: configure the URL of the base CRL")
		case ext.Id.Equal(oidIssuingDP):
			p, err := checkIssuingDP(ext.Value)
			if err != nil {
				return "", err
			}
			part = p
		case ext.Id.Equal(oidAuthorityKeyID), ext.Id.Equal(oidCRLNumber):
		case ext.Critical:
			return "", fmt.Errorf("unknown critical CRL extension %s", ext.Id)
		}
	}
	return part, nil
}

// checkIssuingDP refuses an Issuing Distribution Point whose CRL covers
// less than every end-entity certificate of its scope in a way segmesh
// does not model: onlyContainsCACerts [2], onlySomeReasons [3],
// indirectCRL [4], onlyContainsAttributeCerts [5]. It returns the scope
// of the others: the distributionPoint [0] names and onlyContainsUserCerts
// [1].
func checkIssuingDP(v []byte) (string, error) {
	in := cryptobyte.String(v)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return "", errors.New("malformed issuing distribution point")
	}
	narrow := map[cbasn1.Tag]string{
		cbasn1.Tag(2).ContextSpecific():               "onlyContainsCACerts (an authority revocation list)",
		cbasn1.Tag(3).ContextSpecific():               "onlySomeReasons (a reason partition)",
		cbasn1.Tag(3).ContextSpecific().Constructed(): "onlySomeReasons (a reason partition)",
		cbasn1.Tag(4).ContextSpecific():               "indirectCRL",
		cbasn1.Tag(5).ContextSpecific():               "onlyContainsAttributeCerts",
	}
	isTrue := func(field []byte) bool { return !(len(field) == 1 && field[0] == 0) }
	var names []string
	userOnly := false
	for !seq.Empty() {
		var field cryptobyte.String
		var tag cbasn1.Tag
		if !seq.ReadAnyASN1(&field, &tag) {
			return "", errors.New("malformed issuing distribution point")
		}
		switch tag {
		case cbasn1.Tag(0).Constructed().ContextSpecific():
			n, err := readDPName(field)
			if err != nil {
				return "", fmt.Errorf("issuing distribution point: %w", err)
			}
			names = append(names, n...)
			continue
		case cbasn1.Tag(1).ContextSpecific():
			userOnly = isTrue(field)
			continue
		}
		name, ok := narrow[tag]
		if !ok {
			return "", fmt.Errorf("issuing distribution point with an unknown field (tag %d)", int(tag&0x1f))
		}
		if tag != cbasn1.Tag(3).ContextSpecific() && tag != cbasn1.Tag(3).ContextSpecific().Constructed() && !isTrue(field) {
			continue // a BOOLEAN written FALSE: the default, harmless
		}
		return "", fmt.Errorf("the CRL's issuing distribution point says %s: segmesh cannot tell which certificates it covers; configure the URL of the issuer's full CRL or of its partitions by distribution point", name)
	}
	return scopeText(userOnly, names), nil
}
