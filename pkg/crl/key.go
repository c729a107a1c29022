package crl

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"math/big"
)

// IssuerKey identifies one CRL issuer: the SHA-256 of the issuer's raw
// subject followed by its key identifier. A CA that renewed its key keeps its
// name but gets a new key, so its two CRLs get two keys, as certificates
// issued under each key are listed only in that key's CRL (AD CS publishes
// them as CA.crl and CA(1).crl).
type IssuerKey [sha256.Size]byte

// KeyOf returns the key for an issuer with the given DER subject and key
// identifier (the CA's SubjectKeyId, or the AuthorityKeyId of what it signed);
// keyID may be empty.
func KeyOf(rawSubject, keyID []byte) IssuerKey {
	h := sha256.New()
	h.Write(rawSubject)
	h.Write(keyID)
	var k IssuerKey
	h.Sum(k[:0])
	return k
}

// CertIssuerKey returns the key of the issuer of cert, from its RawIssuer and
// AuthorityKeyId. Callers on a hot path compute it once per connection.
func CertIssuerKey(cert *x509.Certificate) IssuerKey {
	return KeyOf(cert.RawIssuer, cert.AuthorityKeyId)
}

// String returns the key in hexadecimal.
func (k IssuerKey) String() string { return hex.EncodeToString(k[:]) }

// IsZero reports whether k is the zero key.
func (k IssuerKey) IsZero() bool { return k == IssuerKey{} }

// SerialBytes returns the form serials take in an [Index] and on the wire:
// the big-endian magnitude without leading zeros (big.Int.Bytes; zero is
// empty). It reports false for a negative serial, which RFC 5280 forbids and
// crypto/x509 refuses in certificates.
func SerialBytes(serial *big.Int) ([]byte, bool) {
	if serial == nil || serial.Sign() < 0 {
		return nil, false
	}
	return serial.Bytes(), true
}

// serialKey is SerialBytes without an allocation for serials up to len(buf).
func serialKey(buf []byte, serial *big.Int) ([]byte, bool) {
	if serial == nil || serial.Sign() < 0 {
		return nil, false
	}
	n := (serial.BitLen() + 7) / 8
	if n > len(buf) {
		return serial.Bytes(), true
	}
	return serial.FillBytes(buf[:n]), true
}

// trimSerial turns minimal DER INTEGER content octets into the index form. It
// reports false for a negative value.
func trimSerial(content []byte) ([]byte, bool) {
	if len(content) == 0 || content[0]&0x80 != 0 {
		return nil, false
	}
	if content[0] == 0 {
		return content[1:], true
	}
	return content, true
}
