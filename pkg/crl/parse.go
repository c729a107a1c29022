package crl

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CRL is a parsed, not yet verified, certificate revocation list.
type CRL struct {
	// Header is the CRL without its entries, parsed by
	// x509.ParseRevocationList: issuer, times, number, authority key id,
	// extensions. Its RawTBSRevocationList and Signature are the original
	// ones, so Header.CheckSignatureFrom verifies the whole CRL; its
	// RevokedCertificateEntries is empty.
	Header *x509.RevocationList
	// DER is the CRL as received, after PEM decoding.
	DER []byte

	b     *Builder
	built *Index
	n     int
	// partition is the CRL's scope (Meta.Partition).
	partition string
}

// Len returns the number of entries, duplicates included.
func (c *CRL) Len() int { return c.n }

// Partition returns the CRL's scope: "" for a CRL of every certificate of
// its issuer, else the text [Meta.Partition] describes.
func (c *CRL) Partition() string { return c.partition }

// Object identifiers the parser acts on, as DER content octets.
var (
	oidReasonCode        = []byte{0x55, 0x1d, 0x15} // 2.5.29.21
	oidCertificateIssuer = []byte{0x55, 0x1d, 0x1d} // 2.5.29.29
)

// Decode returns the DER of a CRL given as DER or as PEM (block type
// "X509 CRL"; leading text before the block is allowed).
func Decode(data []byte) ([]byte, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == 0x30 {
		return data, nil
	}
	if i := bytes.Index(data, []byte("-----BEGIN")); i >= 0 {
		rest := data[i:]
		for {
			block, r := pem.Decode(rest)
			if block == nil {
				break
			}
			if block.Type == "X509 CRL" {
				return block.Bytes, nil
			}
			rest = r
		}
		return nil, &Error{Kind: KindMalformed, Err: errors.New(`no PEM block of type "X509 CRL"`)}
	}
	return nil, &Error{Kind: KindMalformed, Err: errors.New("neither DER nor PEM")}
}

// Parse decodes (DER or PEM) and parses a CRL, reading every entry into an
// index. It does not verify the signature: see [CRL.Verify]. Errors are
// *Error with KindMalformed or KindUnsupported.
//
// The header goes through x509.ParseRevocationList on a copy of the CRL
// without its entries; the entries are checked as strictly as that function
// checks them (FuzzParse compares the two) but never materialised as
// x509.RevocationListEntry values, which cost about 360 bytes each.
func Parse(data []byte) (*CRL, error) {
	der, err := Decode(data)
	if err != nil {
		return nil, err
	}
	stripped, tbs, revoked, err := split(der)
	if err != nil {
		return nil, malformed(err)
	}
	hdr, err := x509.ParseRevocationList(stripped)
	if err != nil {
		return nil, malformed(err)
	}
	if len(hdr.RevokedCertificateEntries) != 0 {
		return nil, malformed(errors.New("data after the revoked certificates"))
	}
	hdr.Raw = der
	hdr.RawTBSRevocationList = tbs
	partition, err := checkScope(hdr.Extensions)
	if err != nil {
		return nil, &Error{Kind: KindUnsupported, Issuer: hdr.Issuer.String(), Err: err}
	}
	b, err := parseEntries(revoked)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Issuer = hdr.Issuer.String()
			return nil, e
		}
		return nil, &Error{Kind: KindMalformed, Issuer: hdr.Issuer.String(), Err: err}
	}
	return &CRL{Header: hdr, DER: der, b: b, n: b.Len(), partition: partition}, nil
}

func malformed(err error) error { return &Error{Kind: KindMalformed, Err: err} }

// split returns a copy of der without its revokedCertificates, the original
// TBS element, and the content of revokedCertificates (nil when absent). It
// reads the same elements x509.ParseRevocationList reads.
func split(der []byte) (stripped, tbs, revoked []byte, err error) {
	input := cryptobyte.String(der)
	var outer cryptobyte.String
	if !input.ReadASN1(&outer, cbasn1.SEQUENCE) {
		return nil, nil, nil, errors.New("malformed crl")
	}
	var tbsElem cryptobyte.String
	if !outer.ReadASN1Element(&tbsElem, cbasn1.SEQUENCE) {
		return nil, nil, nil, errors.New("malformed tbs crl")
	}
	rest := []byte(outer) // signatureAlgorithm, signatureValue, anything after
	var body cryptobyte.String
	t := tbsElem
	if !t.ReadASN1(&body, cbasn1.SEQUENCE) {
		return nil, nil, nil, errors.New("malformed tbs crl")
	}
	start := len(body)
	var skip cryptobyte.String
	var tag cbasn1.Tag
	// version, signature, issuer, thisUpdate
	for range 4 {
		if !body.ReadAnyASN1Element(&skip, &tag) {
			return nil, nil, nil, errors.New("malformed tbs crl")
		}
	}
	if body.PeekASN1Tag(cbasn1.UTCTime) || body.PeekASN1Tag(cbasn1.GeneralizedTime) {
		if !body.ReadAnyASN1Element(&skip, &tag) {
			return nil, nil, nil, errors.New("malformed tbs crl")
		}
	}
	full := []byte(tbsElem)
	headerLen := len(full) - len(t) - start // TBS tag and length octets
	content := full[headerLen:]
	before := content[:start-len(body)]
	var after []byte
	if body.PeekASN1Tag(cbasn1.SEQUENCE) {
		var rv cryptobyte.String
		if !body.ReadASN1(&rv, cbasn1.SEQUENCE) {
			return nil, nil, nil, errors.New("malformed crl")
		}
		revoked = rv
		if revoked == nil {
			revoked = []byte{}
		}
	}
	// x509.ParseRevocationList reads an optional [0] extensions element next
	// and ignores anything else; the copy keeps just that element, so that
	// trailing data cannot be taken for a revoked list there.
	if tag0 := cbasn1.Tag(0).Constructed().ContextSpecific(); body.PeekASN1Tag(tag0) {
		var ext cryptobyte.String
		if !body.ReadASN1Element(&ext, tag0) {
			return nil, nil, nil, errors.New("malformed extensions")
		}
		after = ext
	}

	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddBytes(before)
			b.AddBytes(after)
		})
		b.AddBytes(rest)
	})
	stripped, err = b.Bytes()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("copy header: %w", err)
	}
	return stripped, full, revoked, nil
}

// parseEntries walks the content of revokedCertificates into a Builder.
func parseEntries(revoked []byte) (*Builder, error) {
	// First pass: count the entries and their serial bytes, to size the
	// builder exactly.
	n, total := 0, 0
	s := cryptobyte.String(revoked)
	for !s.Empty() {
		var entry, serial cryptobyte.String
		if !s.ReadASN1(&entry, cbasn1.SEQUENCE) || !entry.ReadASN1(&serial, cbasn1.INTEGER) {
			return nil, errors.New("malformed crl")
		}
		n++
		total += len(serial)
	}
	if n > maxEntries {
		return nil, fmt.Errorf("%d entries, more than %d", n, maxEntries)
	}
	b := NewBuilder(n, total)
	s = cryptobyte.String(revoked)
	for !s.Empty() {
		var entry cryptobyte.String
		if !s.ReadASN1(&entry, cbasn1.SEQUENCE) {
			return nil, errors.New("malformed crl")
		}
		var serial cryptobyte.String
		if !entry.ReadASN1(&serial, cbasn1.INTEGER) || !validInteger(serial) {
			return nil, errors.New("malformed serial number")
		}
		at, err := readTime(&entry)
		if err != nil {
			return nil, err
		}
		reason := 0
		var exts cryptobyte.String
		var present bool
		if !entry.ReadOptionalASN1(&exts, &present, cbasn1.SEQUENCE) {
			return nil, errors.New("malformed extensions")
		}
		for present && !exts.Empty() {
			var ext, oid, val cryptobyte.String
			if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) {
				return nil, errors.New("malformed extension")
			}
			if !ext.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) || !validOID(oid) {
				return nil, errors.New("malformed extension OID field")
			}
			if ext.PeekASN1Tag(cbasn1.BOOLEAN) {
				var critical bool
				if !ext.ReadASN1Boolean(&critical) {
					return nil, errors.New("malformed extension critical field")
				}
			}
			if !ext.ReadASN1(&val, cbasn1.OCTET_STRING) {
				return nil, errors.New("malformed extension value field")
			}
			switch {
			case bytes.Equal(oid, oidReasonCode):
				if !val.ReadASN1Enum(&reason) {
					return nil, errors.New("malformed reasonCode extension")
				}
			case bytes.Equal(oid, oidCertificateIssuer):
				return nil, &Error{Kind: KindUnsupported, Err: errors.New("indirect CRL (entry with a certificate issuer extension)")}
			}
		}
		key, ok := trimSerial(serial)
		if !ok {
			continue // negative: no certificate crypto/x509 accepts has one
		}
		b.add(key, at, reason)
	}
	return b, nil
}

// validInteger reports whether b is a minimal DER INTEGER encoding, as
// cryptobyte's big.Int reader requires.
func validInteger(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	if len(b) == 1 {
		return true
	}
	return !(b[0] == 0 && b[1]&0x80 == 0 || b[0] == 0xff && b[1]&0x80 == 0x80)
}

// validOID reports whether b is an OBJECT IDENTIFIER content that cryptobyte's
// ReadASN1ObjectIdentifier accepts, without allocating its components.
func validOID(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for len(b) > 0 {
		ret := 0
		i := 0
		for {
			if len(b) == 0 || i == 5 || ret >= 1<<(31-7) {
				return false
			}
			c := b[0]
			b = b[1:]
			if i == 0 && c == 0x80 {
				return false
			}
			ret = ret<<7 | int(c&0x7f)
			i++
			if c&0x80 == 0 {
				break
			}
		}
	}
	return true
}

// readTime reads a UTCTime or GeneralizedTime as unix seconds. The usual
// RFC 5280 forms (YYMMDDHHMMSSZ, YYYYMMDDHHMMSSZ) are decoded here; anything
// else goes through cryptobyte, which x509.ParseRevocationList uses, so both
// accept the same inputs.
func readTime(s *cryptobyte.String) (int64, error) {
	var t time.Time
	switch {
	case s.PeekASN1Tag(cbasn1.UTCTime):
		el := *s
		var content cryptobyte.String
		if el.ReadASN1(&content, cbasn1.UTCTime) {
			if sec, ok := fastTime(content, true); ok {
				*s = el
				return sec, nil
			}
		}
		if !s.ReadASN1UTCTime(&t) {
			return 0, errors.New("malformed UTCTime")
		}
	case s.PeekASN1Tag(cbasn1.GeneralizedTime):
		el := *s
		var content cryptobyte.String
		if el.ReadASN1(&content, cbasn1.GeneralizedTime) {
			if sec, ok := fastTime(content, false); ok {
				*s = el
				return sec, nil
			}
		}
		if !s.ReadASN1GeneralizedTime(&t) {
			return 0, errors.New("malformed GeneralizedTime")
		}
	default:
		return 0, errors.New("unsupported time format")
	}
	return t.Unix(), nil
}

// fastTime decodes YYMMDDHHMMSSZ (utc) or YYYYMMDDHHMMSSZ.
func fastTime(b []byte, utc bool) (int64, bool) {
	want := 15
	if utc {
		want = 13
	}
	if len(b) != want || b[want-1] != 'Z' {
		return 0, false
	}
	for _, c := range b[:want-1] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	d := func(i int) int { return int(b[i]-'0')*10 + int(b[i+1]-'0') }
	var year, p int
	if utc {
		year = d(0) + 2000
		if year >= 2050 {
			year -= 100
		}
		p = 2
	} else {
		year = d(0)*100 + d(2)
		p = 4
	}
	month, day, hour, minute, sec := d(p), d(p+2), d(p+4), d(p+6), d(p+8)
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC).Unix(), true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	default:
		return 31
	}
}
