// Package krbcrypt opens Kerberos EncryptedData that a peer sent (a KDC's
// reply, a FAST armoured reply, an acceptor's AP-REP) without trusting its
// length.
//
// gokrb5 v8.4.4 does the cryptography and stays the one implementation of
// it: this package only checks, before calling crypto.DecryptEncPart, what
// gokrb5's DecryptMessage takes for granted. For every etype it slices the
// ciphertext at len-checksum (RFC 3961/3962/8009) or at the checksum's
// length (RFC 4757) before looking at the length, so a ciphertext shorter
// than a confounder and a checksum panics ("slice bounds out of range")
// instead of failing. A KDC, an Exchange server or anyone on the path to
// them could take a role down with a 1-byte EncryptedData; CI's fuzz stage
// found it in pkg/s4u's FuzzFASTResponse.
package krbcrypt

import (
	"errors"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/types"
)

// ErrShortCiphertext is wrapped by DecryptEncPart's error when the
// ciphertext cannot hold the etype's confounder and checksum.
var ErrShortCiphertext = errors.New("ciphertext shorter than the etype's confounder and checksum")

// DecryptEncPart decrypts ed with key under the key usage and verifies its
// integrity, as gokrb5's crypto.DecryptEncPart does, after checking that
// the key's etype is known, the key has that etype's size and the
// ciphertext is long enough to hold a confounder and a checksum. It never
// panics on the bytes of ed.
func DecryptEncPart(ed types.EncryptedData, key types.EncryptionKey, usage uint32) ([]byte, error) {
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return nil, fmt.Errorf("decrypt: etype %d: %w", key.KeyType, err)
	}
	if len(key.KeyValue) != et.GetKeyByteSize() {
		return nil, fmt.Errorf("decrypt: etype %d wants a %d-byte key, this one has %d", key.KeyType, et.GetKeyByteSize(), len(key.KeyValue))
	}
	if least := et.GetConfounderByteSize() + et.GetHMACBitLength()/8; len(ed.Cipher) < least {
		return nil, fmt.Errorf("decrypt: etype %d: %w (%d bytes, at least %d)", key.KeyType, ErrShortCiphertext, len(ed.Cipher), least)
	}
	return crypto.DecryptEncPart(ed, key, usage)
}
