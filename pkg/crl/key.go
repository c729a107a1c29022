package crl

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"math/bits"
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
	if n := len(rawSubject) + len(keyID); n <= 256 {
		// sha256.Sum256 over one stack buffer costs two thirds of the
		// streaming hash.New/Write/Sum on this hot path.
		var buf [256]byte
		copy(buf[copy(buf[:], rawSubject):], keyID)
		return sha256.Sum256(buf[:n])
	}
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

// serialKey is SerialBytes without an allocation for serials up to len(buf),
// writing whole words (big.Int.FillBytes goes byte by byte).
func serialKey(buf []byte, serial *big.Int) ([]byte, bool) {
	if serial == nil || serial.Sign() < 0 {
		return nil, false
	}
	words := serial.Bits() // little-endian, no leading zero word
	const ws = bits.UintSize / 8
	n := len(words) * ws
	if n > len(buf) {
		return serial.Bytes(), true
	}
	for i, w := range words {
		end := n - i*ws
		if ws == 8 {
			binary.BigEndian.PutUint64(buf[end-8:end], uint64(w))
		} else {
			binary.BigEndian.PutUint32(buf[end-4:end], uint32(w))
		}
	}
	b := buf[:n]
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b, true
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
