package krbfast

import (
	"crypto/aes"
	"crypto/hmac"
	"crypto/sha1"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/types"
)

// PRF is the enctype's pseudo-random function: for AES (RFC 3962 section
// 6) the first block of SHA-1(data) encrypted with DK(key, "prf"); for RC4
// (RFC 4757) HMAC-SHA1(key, data).
func PRF(key types.EncryptionKey, data []byte) ([]byte, error) {
	switch key.KeyType {
	case etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96:
		et, err := crypto.GetEtype(key.KeyType)
		if err != nil {
			return nil, err
		}
		kp, err := et.DeriveKey(key.KeyValue, []byte("prf"))
		if err != nil {
			return nil, fmt.Errorf("PRF key: %w", err)
		}
		b, err := aes.NewCipher(kp)
		if err != nil {
			return nil, fmt.Errorf("PRF key: %w", err)
		}
		h := sha1.Sum(data)
		out := make([]byte, aes.BlockSize)
		// One block: CBC-CTS with a zero IV is the block cipher itself.
		b.Encrypt(out, h[:aes.BlockSize])
		return out, nil
	case etypeID.RC4_HMAC:
		m := hmac.New(sha1.New, key.KeyValue)
		m.Write(data)
		return m.Sum(nil), nil
	}
	return nil, fmt.Errorf("no PRF for etype %d (FAST needs AES or RC4 keys)", key.KeyType)
}

// seedSize is the random-to-key input length of an etype, which for AES and
// RC4 is the key itself.
func seedSize(etype int32) (int, error) {
	switch etype {
	case etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.RC4_HMAC:
		return 16, nil
	case etypeID.AES256_CTS_HMAC_SHA1_96:
		return 32, nil
	}
	return 0, fmt.Errorf("no KRB-FX-CF2 for etype %d (FAST needs AES or RC4 keys)", etype)
}

// prfPlus is PRF+ (RFC 6113 section 5.1): PRF(key, 1|pepper) ||
// PRF(key, 2|pepper) || ..., n bytes of it.
func prfPlus(key types.EncryptionKey, pepper string, n int) ([]byte, error) {
	out := make([]byte, 0, n+20)
	for i := byte(1); len(out) < n; i++ {
		p, err := PRF(key, append([]byte{i}, pepper...))
		if err != nil {
			return nil, err
		}
		out = append(out, p...)
	}
	return out[:n], nil
}

// CF2 is KRB-FX-CF2(k1, k2, pepper1, pepper2) (RFC 6113 section 5.1):
// random-to-key(PRF+(k1, pepper1) XOR PRF+(k2, pepper2)), a key of k1's
// enctype.
func CF2(k1, k2 types.EncryptionKey, pepper1, pepper2 string) (types.EncryptionKey, error) {
	n, err := seedSize(k1.KeyType)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	a, err := prfPlus(k1, pepper1, n)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	b, err := prfPlus(k2, pepper2, n)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	for i := range a {
		a[i] ^= b[i]
	}
	return types.EncryptionKey{KeyType: k1.KeyType, KeyValue: a}, nil
}
