package s4u

import (
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // PBKDF2-HMAC-SHA1 is the string-to-key of the AES Kerberos etypes (RFC 3962)
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
)

// MaxIterations is the highest string-to-key iteration count accepted from
// a KDC: a PREAUTH_REQUIRED reply is not authenticated, and its
// ETYPE-INFO2 may ask for up to 2^32 PBKDF2 iterations (hours of CPU). MIT
// krb5 refuses 2^24 and above (lib/crypto/krb/s2k_pbkdf2.c,
// MAX_ITERATION_COUNT); AD and Samba use 4096.
const MaxIterations = 1<<24 - 1

// MinIterations is the lowest string-to-key iteration count accepted: RFC
// 3962's default, which AD, Samba and MIT use. A lower count from an
// unauthenticated PREAUTH_REQUIRED would make the PA-ENC-TIMESTAMP sent
// under it a fast offline guess of the password (a rogue KDC's AES
// downgrade; TestAttackRogueKDCIterations).
const MinIterations = 4096

// ctxCheckEvery is how many PBKDF2 iterations run between looks at the
// context (about a millisecond of HMAC-SHA1).
const ctxCheckEvery = 1 << 12

// stringToKey derives the service account's long-term key like gokrb5's
// EType.StringToKey, but refuses an iteration count above MaxIterations and
// stops when ctx ends: gokrb5's PBKDF2 can be neither bounded nor stopped,
// so the PBKDF2 of the AES etypes (RFC 3962, RFC 8009) is done here, and
// gokrb5 does the rest (random-to-key and the "kerberos" derivation).
// Etypes without an iteration count (RC4, DES3) go to gokrb5 directly.
func stringToKey(ctx context.Context, etype int32, password, salt, s2kparams string) ([]byte, error) {
	et, err := crypto.GetEtype(etype)
	if err != nil {
		return nil, err
	}
	var h func() hash.Hash
	var size int
	switch etype {
	case etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96:
		h, size = sha1.New, et.GetKeyByteSize()
	case etypeID.AES128_CTS_HMAC_SHA256_128:
		// RFC 8009 section 4: the salt is prefixed with the etype's name.
		h, size = et.GetHashFunc(), et.GetKeyByteSize()
		salt = "aes128-cts-hmac-sha256-128\x00" + salt
	default:
		return et.StringToKey(password, salt, s2kparams)
	}
	iter, err := iterations(s2kparams)
	if err != nil {
		return nil, err
	}
	key, err := pbkdf2(ctx, h, []byte(password), []byte(salt), iter, size)
	if err != nil {
		return nil, err
	}
	return et.DeriveKey(et.RandomToKey(key), []byte("kerberos"))
}

// iterations reads the 4-byte big-endian iteration count of s2kparams (RFC
// 3962 section 4; 0 means 2^32, refused like any count above
// MaxIterations; a count below MinIterations is refused too).
func iterations(s2kparams string) (int, error) {
	b, err := hex.DecodeString(s2kparams)
	if err != nil || len(b) != 4 {
		return 0, fmt.Errorf("string-to-key parameters %q are not 4 bytes", s2kparams)
	}
	n := binary.BigEndian.Uint32(b)
	if n == 0 || n > MaxIterations {
		count := uint64(n)
		if n == 0 {
			count = 1 << 32
		}
		return 0, fmt.Errorf("the KDC asks for %d string-to-key iterations, above the %d accepted (MIT refuses them too): a KDC or a network path that should not be trusted", count, MaxIterations)
	}
	if n < MinIterations {
		return 0, fmt.Errorf("the KDC asks for %d string-to-key iterations, below the %d every KDC uses: a key that cheap to guess is not made (a KDC or a network path that should not be trusted; check segmesh.dnsServer and kcd.domains[].domainController)", n, MinIterations)
	}
	return int(n), nil
}

// pbkdf2 is PBKDF2 (RFC 8018 section 5.2) that looks at ctx every
// ctxCheckEvery iterations.
func pbkdf2(ctx context.Context, h func() hash.Hash, password, salt []byte, iter, size int) ([]byte, error) {
	prf := hmac.New(h, password)
	hl := prf.Size()
	out := make([]byte, 0, (size+hl-1)/hl*hl)
	u := make([]byte, hl)
	t := make([]byte, hl)
	var idx [4]byte
	for block := uint32(1); len(out) < size; block++ {
		prf.Reset()
		prf.Write(salt)
		binary.BigEndian.PutUint32(idx[:], block)
		prf.Write(idx[:])
		u = prf.Sum(u[:0])
		copy(t, u)
		for i := 1; i < iter; i++ {
			if i%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return nil, fmt.Errorf("deriving the service account key: %w", err)
				}
			}
			prf.Reset()
			prf.Write(u)
			u = prf.Sum(u[:0])
			for j := range t {
				t[j] ^= u[j]
			}
		}
		out = append(out, t...)
	}
	return out[:size], nil
}
