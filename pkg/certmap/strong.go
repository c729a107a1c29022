package certmap

import (
	"crypto/sha1" //nolint:gosec // SHA-1 is the hash Windows' X509:<SHA1-PUKEY> mapping names; it identifies, it does not sign
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Strong certificate mapping (KB5014754). S4U2Self by name never shows the
// certificate to the KDC, so the KDC's own strong-mapping enforcement does
// not apply to the gateway: when strong mapping is on, segmesh itself
// requires that the directory binds the certificate to the user, by
// userCertificate (an exact match), by altSecurityIdentities in one of the
// strong forms, or by the SID extension.

// oidSIDExtension is szOID_NTDS_CA_SECURITY_EXT, the SID extension AD CS
// puts in certificates since KB5014754; oidSIDOtherName is the otherName
// inside it that carries the SID string.
func oidSIDExtension() asn1.ObjectIdentifier {
	return asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 25, 2}
}
func oidSIDOtherName() asn1.ObjectIdentifier {
	return asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 25, 2, 1}
}

// StrongForms returns the strong altSecurityIdentities values that would
// bind cert to a user, in the form Windows writes them, for an
// administrator to add: X509:<I>issuer<SR>serial (issuer in Windows' order,
// serial bytes reversed), X509:<SKI>… when the certificate has a subject key
// identifier, and X509:<SHA1-PUKEY>… (the SHA-1 of the certificate, as
// Windows' tools compute it).
func StrongForms(cert *x509.Certificate) []string {
	forms := []string{"X509:<I>" + windowsDN(cert) + "<SR>" + reversedSerialHex(cert)}
	if len(cert.SubjectKeyId) > 0 {
		forms = append(forms, "X509:<SKI>"+hex.EncodeToString(cert.SubjectKeyId))
	}
	sum := sha1.Sum(cert.Raw) //nolint:gosec // identification only
	return append(forms, "X509:<SHA1-PUKEY>"+hex.EncodeToString(sum[:]))
}

// StrongMatch reports whether the directory entry m binds cert strongly and
// returns the form that did: "SID", or the altSecurityIdentities value.
// Issuer names compare by RDN, in either order, case-insensitively; hex
// compares case-insensitively. X509:<SHA1-PUKEY> accepts the SHA-1 of the
// certificate and of its SubjectPublicKeyInfo, since both readings of
// MS-PKCA's "SHA1 hash of public key" are in use.
func StrongMatch(cert *x509.Certificate, m Mapping) (string, bool) {
	if sid, ok, err := CertificateSID(cert); err == nil && ok && m.ObjectSID != "" && strings.EqualFold(sid, m.ObjectSID) {
		return "SID", true
	}
	certSHA1 := sha1.Sum(cert.Raw)                    //nolint:gosec // identification only
	keySHA1 := sha1.Sum(cert.RawSubjectPublicKeyInfo) //nolint:gosec // identification only
	for _, v := range m.AltSecurityIdentities {
		kind, rest, ok := cutX509(v)
		if !ok {
			continue
		}
		switch kind {
		case "I":
			issuer, serial, ok := strings.Cut(rest, "<SR>")
			if ok && sameDN(issuer, cert) && strings.EqualFold(strings.TrimSpace(serial), reversedSerialHex(cert)) {
				return v, true
			}
		case "SKI":
			if len(cert.SubjectKeyId) > 0 && strings.EqualFold(strings.TrimSpace(rest), hex.EncodeToString(cert.SubjectKeyId)) {
				return v, true
			}
		case "SHA1-PUKEY":
			h := strings.TrimSpace(rest)
			if strings.EqualFold(h, hex.EncodeToString(certSHA1[:])) || strings.EqualFold(h, hex.EncodeToString(keySHA1[:])) {
				return v, true
			}
		}
	}
	return "", false
}

// cutX509 splits "X509:<KIND>rest" into KIND and rest.
func cutX509(v string) (kind, rest string, ok bool) {
	v = strings.TrimSpace(v)
	if len(v) < 5 || !strings.EqualFold(v[:5], "X509:") {
		return "", "", false
	}
	v = strings.TrimLeft(v[5:], " ")
	if !strings.HasPrefix(v, "<") {
		return "", "", false
	}
	end := strings.IndexByte(v, '>')
	if end < 0 {
		return "", "", false
	}
	return strings.ToUpper(v[1:end]), v[end+1:], true
}

// CertificateSID returns the SID in cert's SID extension
// (1.3.6.1.4.1.311.25.2), if it has one.
func CertificateSID(cert *x509.Certificate) (string, bool, error) {
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSIDExtension()) {
			continue
		}
		sid, err := parseSIDExtension(ext.Value)
		if err != nil {
			return "", false, err
		}
		return sid, true, nil
	}
	return "", false, nil
}

// parseSIDExtension decodes SEQUENCE { [0] { OID 1.3.6.1.4.1.311.25.2.1,
// [0] EXPLICIT OCTET STRING "S-1-5-…" } }.
func parseSIDExtension(der []byte) (string, error) {
	const tag0 = cbasn1.Tag(0xa0)
	bad := errors.New("certmap: malformed SID extension (1.3.6.1.4.1.311.25.2)")
	in := cryptobyte.String(der)
	var seq, other, explicit, sid cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1(&other, tag0) ||
		!other.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidSIDOtherName()) ||
		!other.ReadASN1(&explicit, tag0) || !explicit.ReadASN1(&sid, cbasn1.OCTET_STRING) {
		return "", bad
	}
	s := string(sid)
	if !strings.HasPrefix(s, "S-1-") {
		return "", bad
	}
	return s, nil
}

// sidString formats a binary objectSid (MS-DTYP 2.4.2.2) as S-1-….
func sidString(b []byte) (string, error) {
	if len(b) < 8 || b[0] != 1 || len(b) != 8+4*int(b[1]) {
		return "", fmt.Errorf("certmap: objectSid of %d bytes is not a SID", len(b))
	}
	var auth uint64
	for _, c := range b[2:8] {
		auth = auth<<8 | uint64(c)
	}
	var sb strings.Builder
	sb.WriteString("S-1-")
	sb.WriteString(strconv.FormatUint(auth, 10))
	for i := 0; i < int(b[1]); i++ {
		sb.WriteByte('-')
		sb.WriteString(strconv.FormatUint(uint64(binary.LittleEndian.Uint32(b[8+4*i:])), 10))
	}
	return sb.String(), nil
}

// reversedSerialHex is the certificate serial as Windows stores it in
// X509:<I>…<SR>…: the big-endian serial bytes in reverse order, in hex.
func reversedSerialHex(cert *x509.Certificate) string {
	b := cert.SerialNumber.Bytes()
	r := make([]byte, len(b))
	for i, c := range b {
		r[len(b)-1-i] = c
	}
	return hex.EncodeToString(r)
}

// issuerRDNs returns the certificate's issuer RDNs in encoded order (the
// root first, as Windows writes them).
func issuerRDNs(cert *x509.Certificate) (pkix.RDNSequence, bool) {
	var seq pkix.RDNSequence
	rest, err := asn1.Unmarshal(cert.RawIssuer, &seq)
	return seq, err == nil && len(rest) == 0
}

// windowsAttrName returns the attribute type name Windows' CertNameToStr
// writes for oid; other types are written as dotted OIDs.
func windowsAttrName(oid string) (string, bool) {
	switch oid {
	case "2.5.4.3":
		return "CN", true
	case "2.5.4.11":
		return "OU", true
	case "2.5.4.10":
		return "O", true
	case "2.5.4.7":
		return "L", true
	case "2.5.4.8":
		return "S", true
	case "2.5.4.6":
		return "C", true
	case "0.9.2342.19200300.100.1.25":
		return "DC", true
	case "1.2.840.113549.1.9.1":
		return "E", true
	case "2.5.4.9":
		return "STREET", true
	case "2.5.4.5":
		return "SERIALNUMBER", true
	case "0.9.2342.19200300.100.1.1":
		return "UID", true
	}
	return "", false
}

// normalAttrType folds an attribute type as written in a DN (upper case,
// another spelling or a dotted OID) to Windows' name.
func normalAttrType(typ string) string {
	typ = strings.ToUpper(strings.TrimSpace(typ))
	switch typ {
	case "ST":
		return "S"
	case "EMAILADDRESS", "EMAIL":
		return "E"
	}
	if name, ok := windowsAttrName(typ); ok {
		return name
	}
	return typ
}

type attr struct{ typ, value string }

// issuerAttrs flattens the issuer into (type, value) pairs in encoded order.
func issuerAttrs(cert *x509.Certificate) ([]attr, bool) {
	seq, ok := issuerRDNs(cert)
	if !ok {
		return nil, false
	}
	var out []attr
	for _, rdn := range seq {
		for _, atv := range rdn {
			oid := atv.Type.String()
			typ, known := windowsAttrName(oid)
			if !known {
				typ = oid
			}
			out = append(out, attr{typ: typ, value: fmt.Sprint(atv.Value)})
		}
	}
	return out, true
}

// windowsDN writes the issuer as Windows does in altSecurityIdentities: the
// RDNs in encoded order, root first (DC=com,DC=contoso,CN=CA), the reverse
// of RFC 4514's string.
func windowsDN(cert *x509.Certificate) string {
	attrs, ok := issuerAttrs(cert)
	if !ok {
		return cert.Issuer.String()
	}
	out := make([]string, len(attrs))
	for i, a := range attrs {
		out[i] = a.typ + "=" + escapeDNValue(a.value)
	}
	return strings.Join(out, ",")
}

// escapeDNValue escapes an attribute value as RFC 4514 2.4 asks.
func escapeDNValue(v string) string {
	var b strings.Builder
	for i, r := range v {
		switch {
		case strings.ContainsRune(`,+"\<>;=`, r),
			(i == 0 && (r == ' ' || r == '#')),
			(i == len(v)-1 && r == ' '):
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// sameDN reports whether the DN text s names the certificate's issuer, with
// the RDNs in either order, types (and their aliases) and values compared
// case-insensitively.
func sameDN(s string, cert *x509.Certificate) bool {
	parsed, err := ldap.ParseDN(strings.TrimSpace(s))
	if err != nil {
		return false
	}
	var got []attr
	for _, rdn := range parsed.RDNs {
		for _, a := range rdn.Attributes {
			got = append(got, attr{typ: normalAttrType(a.Type), value: strings.TrimSpace(a.Value)})
		}
	}
	want, ok := issuerAttrs(cert)
	if !ok || len(got) != len(want) {
		return false
	}
	equal := func(reversed bool) bool {
		for i := range want {
			g := got[i]
			if reversed {
				g = got[len(got)-1-i]
			}
			if !strings.EqualFold(g.typ, want[i].typ) || !strings.EqualFold(g.value, want[i].value) {
				return false
			}
		}
		return true
	}
	return equal(false) || equal(true)
}
