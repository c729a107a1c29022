package pfx

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// errBadPadding means CBC decryption ended in invalid PKCS#7 padding: the usual sign of a
// wrong key.
var errBadPadding = errors.New("pfx: bad padding")

var (
	// RFC 7292 appendix C.
	oidPBEWithSHAAnd128BitRC4        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 1}
	oidPBEWithSHAAnd40BitRC4         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 2}
	oidPBEWithSHAAnd3KeyTripleDESCBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
	oidPBEWithSHAAnd2KeyTripleDESCBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 4}
	oidPBEWithSHAAnd128BitRC2CBC     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 5}
	oidPBEWithSHAAnd40BitRC2CBC      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 6}
	oidPBES2                         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2                        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACWithSHA1                  = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACWithSHA224                = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACWithSHA256                = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACWithSHA384                = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACWithSHA512                = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidHMACWithSHA512_224            = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 12}
	oidHMACWithSHA512_256            = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 13}
	oidDESEDE3CBC                    = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
	oidAES128CBC                     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC                     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC                     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// decrypt decrypts ciphertext with the algorithm whose AlgorithmIdentifier contents are alg.
func decrypt(alg cryptobyte.String, ciphertext []byte, pw passwordForms, b *budget) ([]byte, error) {
	var oid asn1.ObjectIdentifier
	if !alg.ReadASN1ObjectIdentifier(&oid) {
		return nil, malformed("reading the content encryption algorithm")
	}
	if oid.Equal(oidPBES2) {
		return decryptPBES2(alg, ciphertext, pw.utf8, b)
	}
	keyLen, newBlock := pkcs12PBE(oid)
	if newBlock == nil {
		return nil, &UnsupportedError{Feature: "content encryption algorithm", OID: oid}
	}
	// pkcs-12PbeParams: SEQUENCE { salt OCTET STRING, iterations INTEGER }.
	var params, salt cryptobyte.String
	var iterations int
	if !alg.ReadASN1(&params, cbasn1.SEQUENCE) || !alg.Empty() ||
		!params.ReadASN1(&salt, cbasn1.OCTET_STRING) || !params.ReadASN1Integer(&iterations) || !params.Empty() {
		return nil, malformed("reading the %s parameters", oidName(oid))
	}
	if err := b.spend(iterations, 2); err != nil { // key and IV
		return nil, err
	}
	bmp := pw.bmp[0]
	key := pkcs12KDF(sha1.New, kdfKey, bmp, salt, iterations, keyLen)
	iv := pkcs12KDF(sha1.New, kdfIV, bmp, salt, iterations, 8)
	block, err := newBlock(key)
	if err != nil {
		return nil, fmt.Errorf("pfx: %s key: %w", oidName(oid), err)
	}
	return cbcDecrypt(block, iv, ciphertext)
}

// pkcs12PBE returns the key length and cipher of a pbeWithSHAAnd... scheme (all use SHA-1
// and an 8-byte IV), or a nil cipher when oid is not one we support.
func pkcs12PBE(oid asn1.ObjectIdentifier) (int, func([]byte) (cipher.Block, error)) {
	switch {
	case oid.Equal(oidPBEWithSHAAnd3KeyTripleDESCBC):
		return 24, des.NewTripleDESCipher
	case oid.Equal(oidPBEWithSHAAnd2KeyTripleDESCBC):
		// Two-key triple DES: K1, K2, K1.
		return 16, func(k []byte) (cipher.Block, error) {
			return des.NewTripleDESCipher(append(k[:16:16], k[:8]...))
		}
	case oid.Equal(oidPBEWithSHAAnd128BitRC2CBC):
		return 16, func(k []byte) (cipher.Block, error) { return newRC2(k, 128) }
	case oid.Equal(oidPBEWithSHAAnd40BitRC2CBC):
		return 5, func(k []byte) (cipher.Block, error) { return newRC2(k, 40) }
	}
	return 0, nil
}

// decryptPBES2 implements PBES2 (RFC 8018 section 6.2) with PBKDF2 and a CBC cipher. params
// holds the PBES2-params SEQUENCE.
func decryptPBES2(params cryptobyte.String, ciphertext, password []byte, b *budget) ([]byte, error) {
	var seq, kdfAlg, encAlg cryptobyte.String
	var kdfOID, encOID asn1.ObjectIdentifier
	if !params.ReadASN1(&seq, cbasn1.SEQUENCE) || !params.Empty() ||
		!seq.ReadASN1(&kdfAlg, cbasn1.SEQUENCE) || !seq.ReadASN1(&encAlg, cbasn1.SEQUENCE) || !seq.Empty() ||
		!kdfAlg.ReadASN1ObjectIdentifier(&kdfOID) || !encAlg.ReadASN1ObjectIdentifier(&encOID) {
		return nil, malformed("reading the PBES2 parameters")
	}
	if !kdfOID.Equal(oidPBKDF2) {
		return nil, &UnsupportedError{Feature: "PBES2 key derivation function", OID: kdfOID}
	}
	// PBKDF2-params: salt, iterationCount, keyLength OPTIONAL, prf DEFAULT hmacWithSHA1.
	var kp, salt cryptobyte.String
	var iterations, keyLen int
	if !kdfAlg.ReadASN1(&kp, cbasn1.SEQUENCE) || !kdfAlg.Empty() {
		return nil, malformed("reading the PBKDF2 parameters")
	}
	if !kp.PeekASN1Tag(cbasn1.OCTET_STRING) {
		return nil, &UnsupportedError{Feature: "PBKDF2 salt source (otherSource)"}
	}
	if !kp.ReadASN1(&salt, cbasn1.OCTET_STRING) || !kp.ReadASN1Integer(&iterations) ||
		kp.PeekASN1Tag(cbasn1.INTEGER) && !kp.ReadASN1Integer(&keyLen) {
		return nil, malformed("reading the PBKDF2 parameters")
	}
	prf := sha1.New
	if kp.PeekASN1Tag(cbasn1.SEQUENCE) {
		var prfAlg cryptobyte.String
		var prfOID asn1.ObjectIdentifier
		if !kp.ReadASN1(&prfAlg, cbasn1.SEQUENCE) || !prfAlg.ReadASN1ObjectIdentifier(&prfOID) {
			return nil, malformed("reading the PBKDF2 PRF")
		}
		if prf = pbkdf2PRF(prfOID); prf == nil {
			return nil, &UnsupportedError{Feature: "PBKDF2 PRF", OID: prfOID}
		}
	}
	if !kp.Empty() {
		return nil, malformed("trailing data in the PBKDF2 parameters")
	}
	if err := b.spend(iterations, 1); err != nil {
		return nil, err
	}
	var cipherKeyLen int
	var newBlock func([]byte) (cipher.Block, error)
	switch {
	case encOID.Equal(oidAES128CBC):
		cipherKeyLen, newBlock = 16, aes.NewCipher
	case encOID.Equal(oidAES192CBC):
		cipherKeyLen, newBlock = 24, aes.NewCipher
	case encOID.Equal(oidAES256CBC):
		cipherKeyLen, newBlock = 32, aes.NewCipher
	case encOID.Equal(oidDESEDE3CBC):
		cipherKeyLen, newBlock = 24, des.NewTripleDESCipher
	default:
		return nil, &UnsupportedError{Feature: "PBES2 encryption scheme", OID: encOID}
	}
	if keyLen != 0 && keyLen != cipherKeyLen {
		return nil, malformed("PBKDF2 key length %d does not fit %s", keyLen, oidName(encOID))
	}
	var iv cryptobyte.String
	if !encAlg.ReadASN1(&iv, cbasn1.OCTET_STRING) || !encAlg.Empty() {
		return nil, malformed("reading the %s IV", oidName(encOID))
	}
	key, err := pbkdf2.Key(prf, string(password), salt, iterations, cipherKeyLen)
	if err != nil {
		return nil, fmt.Errorf("pfx: PBKDF2: %w", err)
	}
	block, err := newBlock(key)
	if err != nil {
		return nil, fmt.Errorf("pfx: %s key: %w", oidName(encOID), err)
	}
	if len(iv) != block.BlockSize() {
		return nil, malformed("%s IV is %d bytes, want %d", oidName(encOID), len(iv), block.BlockSize())
	}
	return cbcDecrypt(block, iv, ciphertext)
}

func pbkdf2PRF(oid asn1.ObjectIdentifier) func() hash.Hash {
	switch {
	case oid.Equal(oidHMACWithSHA1):
		return sha1.New
	case oid.Equal(oidHMACWithSHA224):
		return sha256.New224
	case oid.Equal(oidHMACWithSHA256):
		return sha256.New
	case oid.Equal(oidHMACWithSHA384):
		return sha512.New384
	case oid.Equal(oidHMACWithSHA512):
		return sha512.New
	case oid.Equal(oidHMACWithSHA512_224):
		return sha512.New512_224
	case oid.Equal(oidHMACWithSHA512_256):
		return sha512.New512_256
	}
	return nil
}

// cbcDecrypt decrypts in CBC mode and strips PKCS#7 padding.
func cbcDecrypt(block cipher.Block, iv, ciphertext []byte) ([]byte, error) {
	bs := block.BlockSize()
	if len(ciphertext) == 0 || len(ciphertext)%bs != 0 {
		return nil, malformed("ciphertext of %d bytes is not a whole number of %d-byte blocks", len(ciphertext), bs)
	}
	plain := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ciphertext)
	n := int(plain[len(plain)-1])
	if n == 0 || n > bs {
		return nil, errBadPadding
	}
	for _, b := range plain[len(plain)-n:] {
		if int(b) != n {
			return nil, errBadPadding
		}
	}
	return plain[:len(plain)-n], nil
}

// oidName names the OIDs that appear in errors, falling back to dotted form.
func oidName(oid asn1.ObjectIdentifier) string {
	if oid == nil {
		return ""
	}
	names := []struct {
		oid  asn1.ObjectIdentifier
		name string
	}{
		{oidSHA1, "SHA-1"}, {oidSHA224, "SHA-224"}, {oidSHA256, "SHA-256"}, {oidSHA384, "SHA-384"},
		{oidSHA512, "SHA-512"}, {oidPBMAC1, "PBMAC1 (RFC 9579)"}, {oidSignedData, "signedData"},
		{oidEnvelopedData, "envelopedData"}, {oidPBES2, "PBES2"}, {oidPBKDF2, "PBKDF2"},
		{oidPBEWithSHAAnd128BitRC4, "pbeWithSHAAnd128BitRC4"},
		{oidPBEWithSHAAnd40BitRC4, "pbeWithSHAAnd40BitRC4"},
		{oidPBEWithSHAAnd3KeyTripleDESCBC, "pbeWithSHAAnd3-KeyTripleDES-CBC"},
		{oidPBEWithSHAAnd2KeyTripleDESCBC, "pbeWithSHAAnd2-KeyTripleDES-CBC"},
		{oidPBEWithSHAAnd128BitRC2CBC, "pbeWithSHAAnd128BitRC2-CBC"},
		{oidPBEWithSHAAnd40BitRC2CBC, "pbeWithSHAAnd40BitRC2-CBC"},
		{oidAES128CBC, "AES-128-CBC"}, {oidAES192CBC, "AES-192-CBC"}, {oidAES256CBC, "AES-256-CBC"},
		{oidDESEDE3CBC, "DES-EDE3-CBC"},
	}
	for _, n := range names {
		if oid.Equal(n.oid) {
			return n.name
		}
	}
	return oid.String()
}
