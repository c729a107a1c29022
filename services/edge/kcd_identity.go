package edge

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	identityv1 "github.com/segmesh/segmesh/proto/segmesh/identity/v1"
)

// Identity is the user a client certificate maps to.
type Identity struct {
	// UPN is the user principal name tickets are asked for.
	UPN string
	// Realm is the user's Kerberos realm.
	Realm string
	// Source says how the user was found ("ldap" or "san").
	Source string
	// Generation is the identity role's mapping generation of the answer
	// (0 from a role that does not say): see kcd_identity_gen.go.
	Generation uint64
}

// IdentityError is a failure to map a certificate to a user.
type IdentityError struct {
	// Unavailable reports a transient failure (identity role or directory down).
	Unavailable bool
	// Hint says what an administrator can do, from the identity role.
	Hint string
	// Err is the cause.
	Err error
}

// Error describes the failure.
func (e *IdentityError) Error() string { return "map certificate: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *IdentityError) Unwrap() error { return e.Err }

// identityMapper is what the edge needs of the identity role.
type identityMapper interface {
	// MapCertificate returns the user for a verified certificate.
	MapCertificate(ctx context.Context, leafDER []byte, chainDER [][]byte) (Identity, error)
}

// grpcIdentity calls the identity role through its generated client.
type grpcIdentity struct {
	c identityv1.IdentityServiceClient
}

func newGRPCIdentity(cc grpc.ClientConnInterface) *grpcIdentity {
	return &grpcIdentity{c: identityv1.NewIdentityServiceClient(cc)}
}

// MapCertificate asks the identity role.
func (g *grpcIdentity) MapCertificate(ctx context.Context, leaf []byte, chain [][]byte) (Identity, error) {
	resp, err := g.c.MapCertificate(ctx, &identityv1.MapCertificateRequest{CertificateDer: leaf, ChainDer: chain})
	if err != nil {
		st := status.Convert(err)
		switch st.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Internal, codes.Unknown:
			return Identity{}, &IdentityError{Unavailable: true, Err: err}
		}
		return Identity{}, &IdentityError{Hint: st.Message(), Err: err}
	}
	if resp.GetUpn() == "" {
		return Identity{}, &IdentityError{Err: errors.New("identity role returned no UPN")}
	}
	src := "san"
	if resp.GetSource() == identityv1.UPNSource_UPN_SOURCE_LDAP_MAPPING {
		src = "ldap"
	}
	return Identity{UPN: resp.GetUpn(), Realm: resp.GetRealm(), Source: src, Generation: resp.GetMappingGeneration()}, nil
}

// MappingGeneration asks the identity role for its mapping generation.
func (g *grpcIdentity) MappingGeneration(ctx context.Context) (uint64, error) {
	resp, err := g.c.MappingGeneration(ctx, &identityv1.MappingGenerationRequest{})
	if err != nil {
		return 0, err
	}
	return resp.GetMappingGeneration(), nil
}

// identityCache caches mappings by certificate fingerprint for ttl, with
// one call for concurrent misses. It is bounded: when full, expired entries
// are swept and, if that is not enough, the oldest half goes. An entry of
// another mapping generation than the identity role's is not used
// (kcd_identity_gen.go).
type identityCache struct {
	next identityMapper
	ttl  atomic.Int64 // time.Duration; a reload changes it
	max  int
	now  func() time.Time
	gen  generation
	// onGeneration is told of a generation change and how many entries it
	// dropped (the log); may be nil.
	onGeneration func(old, cur uint64, dropped int)

	mu    sync.RWMutex
	m     map[[sha256.Size]byte]identityEntry
	calls sharedCalls[Identity]
}

type identityEntry struct {
	id      Identity
	expires time.Time
}

func newIdentityCache(next identityMapper, ttl, rpc time.Duration, max int, now func() time.Time) *identityCache {
	c := &identityCache{next: next, max: max, now: now, m: map[[sha256.Size]byte]identityEntry{}}
	c.ttl.Store(int64(ttl))
	c.calls.timeout = rpc
	c.calls.g.Call = "edge: the identity role call"
	c.gen.src, _ = next.(generationSource)
	return c
}

// lookup returns the user for the certificate with fingerprint fp and
// whether it came from the cache.
func (c *identityCache) lookup(ctx context.Context, fp [sha256.Size]byte, leaf []byte, chain [][]byte) (Identity, bool, error) {
	now := c.now()
	c.checkGeneration(now)
	c.mu.RLock()
	e, ok := c.m[fp]
	c.mu.RUnlock()
	if ok && now.Before(e.expires) && c.gen.current(e.id.Generation) {
		return e.id, true, nil
	}
	id, err := c.calls.do(ctx, string(fp[:]), func(ctx context.Context) (Identity, error) {
		// A flight that ended between the check above and this one may have
		// stored the answer already: use it rather than ask again.
		c.mu.RLock()
		cur, ok := c.m[fp]
		c.mu.RUnlock()
		if ok && c.now().Before(cur.expires) && c.gen.current(cur.id.Generation) {
			return cur.id, nil
		}
		id, err := c.next.MapCertificate(ctx, leaf, chain)
		if err != nil {
			return Identity{}, err
		}
		c.put(fp, id)
		return id, nil
	})
	if err != nil {
		var ie *IdentityError
		if !errors.As(err, &ie) {
			err = &IdentityError{Unavailable: true, Err: fmt.Errorf("wait for identity: %w", err)}
		}
		return Identity{}, false, err
	}
	return id, false, nil
}

func (c *identityCache) put(fp [sha256.Size]byte, id Identity) {
	c.observe(id.Generation)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		for k := range c.m { // random half, by map order
			if len(c.m) < c.max/2 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[fp] = identityEntry{id: id, expires: now.Add(time.Duration(c.ttl.Load()))}
}

// len returns the number of cached mappings.
func (c *identityCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
