package upn

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ErrNoUPN is returned when a certificate carries no UPN otherName in its
// subject alternative name, or has no subject alternative name at all.
var ErrNoUPN = errors.New("upn: certificate has no UPN (otherName 1.3.6.1.4.1.311.20.2.3) in its subject alternative name")

// MultipleUPNError is returned when a certificate carries more than one UPN.
// segmesh refuses such a certificate rather than pick one: which user it
// stands for is the issuing CA's mistake to fix, not ours to guess.
type MultipleUPNError struct {
	// UPNs lists every UPN found, in certificate order.
	UPNs []string
}

// Error implements error.
func (e *MultipleUPNError) Error() string {
	return fmt.Sprintf("upn: certificate carries %d UPNs in its subject alternative name (%s); segmesh accepts exactly one: reissue the certificate with a single UPN or enable certificate mapping",
		len(e.UPNs), strings.Join(e.UPNs, ", "))
}

// MalformedSANError is returned when the subject alternative name extension,
// or a UPN otherName inside it, does not decode.
type MalformedSANError struct {
	// Reason says what did not decode.
	Reason string
}

// Error implements error.
func (e *MalformedSANError) Error() string {
	return "upn: malformed subject alternative name: " + e.Reason
}

// oidSAN is id-ce-subjectAltName (RFC 5280 4.2.1.6).
func oidSAN() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{2, 5, 29, 17} }

// oidUPN is szOID_NT_PRINCIPAL_NAME, Microsoft's UPN otherName.
func oidUPN() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3} }

// tagOtherName is GeneralName's otherName: [0] IMPLICIT OtherName, so a
// constructed context-specific tag 0. OtherName's value is [0] EXPLICIT,
// which carries the same tag.
const tagOtherName = cbasn1.Tag(0xa0) // [0] constructed, context-specific

// FromCertificate returns the single UPN in cert's subject alternative name.
// It returns ErrNoUPN when there is none, a *MultipleUPNError when there are
// several and a *MalformedSANError when the extension does not decode. The
// UPN is returned as the certificate spells it; use Parse to check it.
func FromCertificate(cert *x509.Certificate) (string, error) {
	upns, err := All(cert)
	if err != nil {
		return "", err
	}
	switch len(upns) {
	case 0:
		return "", ErrNoUPN
	case 1:
		return upns[0], nil
	default:
		return "", &MultipleUPNError{UPNs: upns}
	}
}

// All returns every UPN in cert's subject alternative name, in order, or an
// empty slice when there is none.
func All(cert *x509.Certificate) ([]string, error) {
	if cert == nil {
		return nil, errors.New("upn: no certificate")
	}
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidSAN()) {
			return ParseSAN(ext.Value)
		}
	}
	return nil, nil
}

// ParseSAN returns every UPN otherName in der, the DER value of a subject
// alternative name extension (GeneralNames, RFC 5280 4.2.1.6). Other kinds of
// name are skipped. A UPN whose value is not a valid UTF8String, or a
// structure that does not decode, gives a *MalformedSANError.
func ParseSAN(der []byte) ([]string, error) {
	in := cryptobyte.String(der)
	var names cryptobyte.String
	if !in.ReadASN1(&names, cbasn1.SEQUENCE) {
		return nil, &MalformedSANError{Reason: "GeneralNames is not a SEQUENCE"}
	}
	if !in.Empty() {
		return nil, &MalformedSANError{Reason: "trailing data after GeneralNames"}
	}
	var upns []string
	for i := 0; !names.Empty(); i++ {
		var name cryptobyte.String
		var tag cbasn1.Tag
		if !names.ReadAnyASN1(&name, &tag) {
			return nil, &MalformedSANError{Reason: fmt.Sprintf("GeneralName %d does not decode", i)}
		}
		if tag != tagOtherName {
			continue
		}
		var typeID asn1.ObjectIdentifier
		if !name.ReadASN1ObjectIdentifier(&typeID) {
			return nil, &MalformedSANError{Reason: fmt.Sprintf("otherName %d has no type-id", i)}
		}
		if !typeID.Equal(oidUPN()) {
			continue
		}
		var explicit cryptobyte.String
		if !name.ReadASN1(&explicit, tagOtherName) || !name.Empty() {
			return nil, &MalformedSANError{Reason: fmt.Sprintf("UPN otherName %d: value is not [0] EXPLICIT", i)}
		}
		var value cryptobyte.String
		var valueTag cbasn1.Tag
		if !explicit.ReadAnyASN1(&value, &valueTag) || !explicit.Empty() {
			return nil, &MalformedSANError{Reason: fmt.Sprintf("UPN otherName %d: value does not decode", i)}
		}
		if valueTag != cbasn1.UTF8String {
			return nil, &MalformedSANError{Reason: fmt.Sprintf("UPN otherName %d: value has ASN.1 tag %d, want UTF8String (12)", i, valueTag)}
		}
		if !utf8.Valid(value) {
			return nil, &MalformedSANError{Reason: fmt.Sprintf("UPN otherName %d: value is not valid UTF-8", i)}
		}
		upns = append(upns, string(value))
	}
	return upns, nil
}

// MarshalSAN returns the DER of a subject alternative name extension value
// holding one UPN otherName per element of upns, followed by the DNS names.
// It is meant for tests and tools that mint certificates: put the result in
// x509.Certificate.ExtraExtensions under 2.5.29.17.
func MarshalSAN(upns []string, dnsNames ...string) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, u := range upns {
			b.AddASN1(tagOtherName, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidUPN())
				b.AddASN1(tagOtherName, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) {
						b.AddBytes([]byte(u))
					})
				})
			})
		}
		for _, d := range dnsNames {
			// dNSName is [2] IMPLICIT IA5String.
			b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddBytes([]byte(d))
			})
		}
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("upn: marshal subject alternative name: %w", err)
	}
	return der, nil
}

// SANExtension returns a non-critical subject alternative name extension
// built by MarshalSAN, ready for x509.Certificate.ExtraExtensions.
func SANExtension(upns []string, dnsNames ...string) (pkix.Extension, error) {
	der, err := MarshalSAN(upns, dnsNames...)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidSAN(), Value: der}, nil
}
