package krbcrypt_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/krbcrypt"
)

// TestAttackEveryLength: a peer's EncryptedData of every length from 0 to
// 96 bytes (zeros, random bytes, and a genuine ciphertext cut or padded to
// that length), for every etype gokrb5 holds keys of, including etype 20,
// whose key and checksum sizes no other test uses (the fuzz target's table
// leaves it out), and DES3, whose CBC wants whole blocks. None panics and
// none opens: only the genuine ciphertext at its own length does.
func TestAttackEveryLength(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, etype := range []int32{16, 17, 18, 19, 20, 23} {
		et, err := crypto.GetEtype(etype)
		if err != nil {
			t.Fatalf("etype %d: %v", etype, err)
		}
		key := types.EncryptionKey{KeyType: etype, KeyValue: bytes.Repeat([]byte{9}, et.GetKeyByteSize())}
		genuine, err := crypto.GetEncryptedData([]byte("an EncKDCRepPart"), key, usage, 0)
		if err != nil {
			// gokrb5 v8.4.4 cannot encrypt with the key size it gives
			// etype 20 (24 bytes, RFC 8009 says 32); decrypting must still
			// not panic.
			t.Logf("etype %d: no genuine ciphertext: %v", etype, err)
			genuine.Cipher = nil
		}
		for n := 0; n <= 96; n++ {
			random := make([]byte, n)
			for i := range random {
				random[i] = byte(rnd.Uint32())
			}
			cut := append([]byte(nil), genuine.Cipher[:min(n, len(genuine.Cipher))]...)
			cut = append(cut, make([]byte, n-len(cut))...)
			for name, c := range map[string][]byte{"zeros": make([]byte, n), "random": random, "genuine cut or padded": cut} {
				_, err := krbcrypt.DecryptEncPart(types.EncryptedData{EType: etype, Cipher: c}, key, usage)
				isGenuine := genuine.Cipher != nil && bytes.Equal(c, genuine.Cipher)
				if err == nil && !isGenuine {
					t.Errorf("etype %d, %d bytes of %s: opened", etype, n, name)
				}
				if err != nil && isGenuine {
					t.Errorf("etype %d: the genuine ciphertext did not open: %v", etype, err)
				}
			}
		}
	}
}
