package pfx

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"hash"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var (
	oidSHA1       = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidSHA224     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}
	oidSHA512_224 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 5}
	oidSHA512_256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 6}
)

// macHash returns the hash a MacData's DigestInfo names, or nil.
func macHash(oid asn1.ObjectIdentifier) func() hash.Hash {
	switch {
	case oid.Equal(oidSHA1):
		return sha1.New
	case oid.Equal(oidSHA224):
		return sha256.New224
	case oid.Equal(oidSHA256):
		return sha256.New
	case oid.Equal(oidSHA384):
		return sha512.New384
	case oid.Equal(oidSHA512):
		return sha512.New
	case oid.Equal(oidSHA512_224):
		return sha512.New512_224
	case oid.Equal(oidSHA512_256):
		return sha512.New512_256
	}
	return nil
}

// verifyMAC checks MacData (RFC 7292 section 4) over authSafe and returns the password
// encoding that matched. The HMAC key comes from the PKCS#12 KDF with ID 3 and is as long as
// the hash output; the comparison is constant-time.
func verifyMAC(macData cryptobyte.String, authSafe []byte, pw passwordForms, b *budget) ([]byte, error) {
	var digestInfo, algID, digest, salt cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !macData.ReadASN1(&digestInfo, cbasn1.SEQUENCE) ||
		!digestInfo.ReadASN1(&algID, cbasn1.SEQUENCE) || !algID.ReadASN1ObjectIdentifier(&oid) ||
		!digestInfo.ReadASN1(&digest, cbasn1.OCTET_STRING) || !digestInfo.Empty() ||
		!macData.ReadASN1(&salt, cbasn1.OCTET_STRING) {
		return nil, malformed("reading MacData")
	}
	iterations := 1 // DEFAULT 1
	if macData.PeekASN1Tag(cbasn1.INTEGER) && !macData.ReadASN1Integer(&iterations) || !macData.Empty() {
		return nil, malformed("reading the MAC iteration count")
	}
	if oid.Equal(oidPBMAC1) {
		return nil, &UnsupportedError{Feature: "MAC algorithm", OID: oid}
	}
	newHash := macHash(oid)
	if newHash == nil {
		return nil, &UnsupportedError{Feature: "MAC algorithm", OID: oid}
	}
	if err := b.spend(iterations, len(pw.bmp)); err != nil {
		return nil, err
	}
	size := newHash().Size()
	if len(digest) != size {
		return nil, malformed("MAC is %d bytes, want %d for %s", len(digest), size, oidName(oid))
	}
	for _, bmp := range pw.bmp {
		key := pkcs12KDF(newHash, kdfMAC, bmp, salt, iterations, size)
		mac := hmac.New(newHash, key)
		mac.Write(authSafe)
		if hmac.Equal(mac.Sum(nil), digest) {
			return bmp, nil
		}
	}
	return nil, ErrIncorrectPassword
}
