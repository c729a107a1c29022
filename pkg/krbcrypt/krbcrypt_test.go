package krbcrypt_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/krbcrypt"
)

const usage = 12

func TestDecryptEncPart(t *testing.T) {
	for _, tt := range []struct {
		etype int32
		size  int
		least int
	}{
		{etypeID.AES128_CTS_HMAC_SHA1_96, 16, 16 + 12},
		{etypeID.AES256_CTS_HMAC_SHA1_96, 32, 16 + 12},
		{etypeID.AES128_CTS_HMAC_SHA256_128, 16, 16 + 16},
		{etypeID.RC4_HMAC, 16, 8 + 16},
		{etypeID.DES3_CBC_SHA1_KD, 24, 8 + 20},
	} {
		key := types.EncryptionKey{KeyType: tt.etype, KeyValue: bytes.Repeat([]byte{7}, tt.size)}
		plain := []byte("the reply's encrypted part")
		ed, err := crypto.GetEncryptedData(plain, key, usage, 0)
		if err != nil {
			t.Fatalf("etype %d: %v", tt.etype, err)
		}
		// DES3 (CBC) pads to whole blocks; the ASN.1 decoder ignores it.
		if got, err := krbcrypt.DecryptEncPart(ed, key, usage); err != nil || !bytes.HasPrefix(got, plain) {
			t.Errorf("etype %d: round trip = %q, %v", tt.etype, got, err)
		}
		tampered := ed
		tampered.Cipher = append([]byte(nil), ed.Cipher...)
		tampered.Cipher[len(tampered.Cipher)-1] ^= 1
		if _, err := krbcrypt.DecryptEncPart(tampered, key, usage); err == nil {
			t.Errorf("etype %d: a tampered ciphertext opened", tt.etype)
		}
		if _, err := krbcrypt.DecryptEncPart(ed, key, usage+1); err == nil {
			t.Errorf("etype %d: opened under another key usage", tt.etype)
		}
		for n := 0; n < tt.least; n++ {
			_, err := krbcrypt.DecryptEncPart(types.EncryptedData{EType: tt.etype, Cipher: ed.Cipher[:n]}, key, usage)
			if !errors.Is(err, krbcrypt.ErrShortCiphertext) {
				t.Errorf("etype %d, %d bytes: err = %v, want ErrShortCiphertext", tt.etype, n, err)
			}
		}
		// At the least length the check passes and gokrb5 answers (an
		// integrity failure, not a panic).
		if _, err := krbcrypt.DecryptEncPart(types.EncryptedData{EType: tt.etype, Cipher: make([]byte, tt.least)}, key, usage); err == nil || errors.Is(err, krbcrypt.ErrShortCiphertext) {
			t.Errorf("etype %d, %d zero bytes: err = %v, want an integrity failure", tt.etype, tt.least, err)
		}
	}
}

func TestDecryptEncPartRefusesKeys(t *testing.T) {
	ed := types.EncryptedData{EType: 18, Cipher: make([]byte, 64)}
	for name, key := range map[string]types.EncryptionKey{
		"unknown etype": {KeyType: 99, KeyValue: make([]byte, 32)},
		"short AES key": {KeyType: 18, KeyValue: make([]byte, 16)},
		"empty key":     {KeyType: 17},
		"long RC4 key":  {KeyType: 23, KeyValue: make([]byte, 32)},
	} {
		if _, err := krbcrypt.DecryptEncPart(ed, key, usage); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

// FuzzDecryptEncPart: no ciphertext panics, for every etype the gateway
// can hold a key of.
func FuzzDecryptEncPart(f *testing.F) {
	f.Add(int32(18), []byte{})
	f.Add(int32(23), make([]byte, 23))
	f.Add(int32(16), make([]byte, 29))
	f.Fuzz(func(t *testing.T, etype int32, cipher []byte) {
		sizes := map[int32]int{16: 24, 17: 16, 18: 32, 19: 16, 23: 16}
		size, ok := sizes[etype]
		if !ok {
			return
		}
		key := types.EncryptionKey{KeyType: etype, KeyValue: make([]byte, size)}
		if _, err := krbcrypt.DecryptEncPart(types.EncryptedData{EType: etype, Cipher: cipher}, key, usage); err == nil && len(cipher) < 24 {
			t.Fatalf("etype %d: %d bytes opened", etype, len(cipher))
		}
	})
}
