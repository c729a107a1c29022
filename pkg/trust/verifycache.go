package trust

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
	"time"
)

// verifyCacheSize bounds the chains one Store remembers. An entry keeps the
// certificates its handshake parsed (the leaf and the intermediate, each
// parsed anew per handshake): measured 5.5 KB per leaf-and-intermediate
// chain (review rvfinal, 2,000 devices), so up to about 360 MB at the
// bound, not the 10 MB first written; whether the bound should be lower
// is left to the owner.
const verifyCacheSize = 65536

// verifyCache remembers the chains a Store verified, so that a device that
// connects again with the same chain (a resumed TLS session on another edge
// after a drain, a new keep-alive connection) does not pay crypto/x509's
// signature checks again: in the drain of issue 24 they were a sixth of the
// surviving edge's CPU. It is written here because crypto/x509 keeps no such
// cache and crypto/tls's session cache does not cover VerifyConnection,
// which runs on every handshake, resumed or not.
//
// What makes a remembered verification safe to reuse: crypto/x509's verdict
// for a chain depends only on the chain's bytes, the roots (this Store,
// immutable: a reload builds a new Store with an empty cache), the key
// usages (always client authentication) and the time. The time enters only
// through each certificate's validity period, so a hit is used only inside
// the window in which every certificate of every verified chain is valid;
// outside it the chain is verified again and the refusal names the reason.
// Refusals are never remembered. Revocation is not part of the verdict: the
// edge checks it per connection and per request, cached or not.
type verifyCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]verified
}

// verified is one remembered verification.
type verified struct {
	chains [][]*x509.Certificate
	// from and until bound the window in which every certificate of chains is
	// valid (from the latest NotBefore to the earliest NotAfter).
	from, until time.Time
}

// chainKey digests the chain as presented: every certificate's DER in
// order, each prefixed by its length (a nil entry by a length of zero), so
// that no two different chains share a key.
func chainKey(chain []*x509.Certificate) [sha256.Size]byte {
	h := sha256.New()
	var n [4]byte
	for _, c := range chain {
		if c == nil {
			binary.BigEndian.PutUint32(n[:], 0)
			h.Write(n[:])
			continue
		}
		binary.BigEndian.PutUint32(n[:], uint32(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// maxRemembered is the longest chain, as presented, that is remembered.
const maxRemembered = 8

// rememberable reports whether a chain crypto/x509 accepted may be
// remembered: it holds at most maxRemembered certificates, none nil, none
// twice, each one of the verified chains. crypto/x509 ignores what it does
// not use, so without this rule a device with one valid certificate could
// add certificates it does not need (its intermediate again, any CA's
// certificate), each variant a new key, and fill the cache with its own
// chain, pushing every other device's out (review rvfinal). A chain that is
// not remembered is still accepted: it is verified in full every time.
func rememberable(chain []*x509.Certificate, chains [][]*x509.Certificate) bool {
	if len(chain) > maxRemembered {
		return false
	}
	for i, c := range chain {
		if c == nil {
			return false
		}
		for _, d := range chain[:i] {
			if bytes.Equal(c.Raw, d.Raw) {
				return false
			}
		}
		if !inChains(c, chains) {
			return false
		}
	}
	return true
}

// inChains reports whether c is a certificate of chains.
func inChains(c *x509.Certificate, chains [][]*x509.Certificate) bool {
	for _, chain := range chains {
		for _, v := range chain {
			if v == c || bytes.Equal(v.Raw, c.Raw) {
				return true
			}
		}
	}
	return false
}

// get returns the chains verified for key when now is inside their window.
func (vc *verifyCache) get(key [sha256.Size]byte, now time.Time) ([][]*x509.Certificate, bool) {
	vc.mu.Lock()
	v, ok := vc.m[key]
	vc.mu.Unlock()
	if !ok || now.Before(v.from) || now.After(v.until) {
		return nil, false
	}
	return v.chains, true
}

// put remembers chains, verified for key; when full it forgets one entry
// at random (Go's map order), which costs one verification later.
func (vc *verifyCache) put(key [sha256.Size]byte, chains [][]*x509.Certificate) {
	v := verified{chains: chains}
	for _, chain := range chains {
		for _, c := range chain {
			if v.from.IsZero() || c.NotBefore.After(v.from) {
				v.from = c.NotBefore
			}
			if v.until.IsZero() || c.NotAfter.Before(v.until) {
				v.until = c.NotAfter
			}
		}
	}
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if vc.m == nil {
		vc.m = make(map[[sha256.Size]byte]verified)
	}
	if _, ok := vc.m[key]; !ok && len(vc.m) >= verifyCacheSize {
		for k := range vc.m {
			delete(vc.m, k)
			break
		}
	}
	vc.m[key] = v
}

// len returns how many verifications are remembered.
func (vc *verifyCache) len() int {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	return len(vc.m)
}
