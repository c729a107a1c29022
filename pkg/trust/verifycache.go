package trust

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"math"
	"sync"
	"time"
)

// verifyCacheSize bounds the chains one Store remembers. An entry keeps no
// certificate of its own: the verified chains are held as positions in the
// chain the device presents (the same bytes on every hit, by the key) and in
// the Store's certificates, so an entry is its key, its window and a few
// small slices, about 200 bytes: 13 MB at the bound. (Keeping the parsed
// certificates, as first written, cost 5.5 KB per leaf-and-intermediate
// chain, measured by review rvfinal: 360 MB at the bound.)
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
	// hits counts the verifications served from the cache.
	hits uint64
}

// verified is one remembered verification.
type verified struct {
	// chains are the verified chains as positions: i >= 0 is the presented
	// chain's certificate i, i < 0 the Store's certificate -i-1.
	chains [][]int16
	// from and until bound the window in which every certificate of the
	// verified chains is valid (from the latest NotBefore to the earliest
	// NotAfter).
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

// get returns the chains verified for key when now is inside their window,
// built of presented (the chain whose key it is) and store's certificates.
func (vc *verifyCache) get(key [sha256.Size]byte, presented []*x509.Certificate, store *Store, now time.Time) ([][]*x509.Certificate, bool) {
	vc.mu.Lock()
	v, ok := vc.m[key]
	if ok && !now.Before(v.from) && !now.After(v.until) {
		vc.hits++
	}
	vc.mu.Unlock()
	if !ok || now.Before(v.from) || now.After(v.until) {
		return nil, false
	}
	chains := make([][]*x509.Certificate, len(v.chains))
	for i, pos := range v.chains {
		chain := make([]*x509.Certificate, len(pos))
		for j, p := range pos {
			if p >= 0 {
				if int(p) >= len(presented) {
					return nil, false
				}
				chain[j] = presented[p]
			} else {
				if int(-p-1) >= len(store.certs) {
					return nil, false
				}
				chain[j] = store.certs[-p-1]
			}
		}
		chains[i] = chain
	}
	return chains, true
}

// put remembers chains, verified for key from presented against store; a
// certificate of chains that is neither presented nor the Store's (which
// crypto/x509 does not return) leaves the verification unremembered. When
// full it forgets one entry at random (Go's map order), which costs one
// verification later.
func (vc *verifyCache) put(key [sha256.Size]byte, presented []*x509.Certificate, store *Store, chains [][]*x509.Certificate) {
	if len(presented) > maxRemembered || len(store.certs) >= math.MaxInt16 {
		return
	}
	v := verified{chains: make([][]int16, len(chains))}
	for i, chain := range chains {
		pos := make([]int16, len(chain))
		for j, c := range chain {
			p, ok := position(c, presented, store)
			if !ok {
				return
			}
			pos[j] = p
			if v.from.IsZero() || c.NotBefore.After(v.from) {
				v.from = c.NotBefore
			}
			if v.until.IsZero() || c.NotAfter.Before(v.until) {
				v.until = c.NotAfter
			}
		}
		v.chains[i] = pos
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

// position finds c among the presented certificates (by its bytes) or the
// Store's (the roots crypto/x509 ends a chain with).
func position(c *x509.Certificate, presented []*x509.Certificate, store *Store) (int16, bool) {
	for i, p := range presented {
		if p == c || (p != nil && bytes.Equal(p.Raw, c.Raw)) {
			return int16(i), true
		}
	}
	for i, r := range store.certs {
		if r == c || bytes.Equal(r.Raw, c.Raw) {
			return int16(-i - 1), true
		}
	}
	return 0, false
}

// served returns how many verifications were served from the cache.
func (vc *verifyCache) served() uint64 {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	return vc.hits
}

// len returns how many verifications are remembered.
func (vc *verifyCache) len() int {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	return len(vc.m)
}
