package edge

import (
	"context"
	"sync"
	"testing"
	"time"
)

// remappedIdentity is an identity role whose mapping settings a reload
// changes: it answers user under generation gen, and says gen when asked.
type remappedIdentity struct {
	mu    sync.Mutex
	user  string
	gen   uint64
	asked int // MappingGeneration calls
}

func (r *remappedIdentity) set(user string, gen uint64) {
	r.mu.Lock()
	r.user, r.gen = user, gen
	r.mu.Unlock()
}

func (r *remappedIdentity) MapCertificate(context.Context, []byte, [][]byte) (Identity, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Identity{UPN: r.user, Realm: "LAB.TEST", Generation: r.gen}, nil
}

func (r *remappedIdentity) MappingGeneration(context.Context) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked++
	return r.gen, nil
}

// TestIdentityCacheFollowsTheMappingGeneration: after the identity role's
// mapping settings change (a reload there; the edge's own configuration
// does not change), the edge stops answering from the mappings it cached
// within generationEvery, not at the end of their 15-minute TTL. A role that
// sends no generation (0) keeps the TTL behaviour.
func TestIdentityCacheFollowsTheMappingGeneration(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)}
	src := &remappedIdentity{user: "bob.smith@lab.test", gen: 1}
	c := newIdentityCache(src, 15*time.Minute, time.Minute, 100, clock.Now)
	fp := [32]byte{7}
	lookup := func() (string, bool) {
		t.Helper()
		id, hit, err := c.lookup(context.Background(), fp, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return id.UPN, hit
	}
	if u, _ := lookup(); u != "bob.smith@lab.test" {
		t.Fatalf("first lookup: %s", u)
	}
	if u, hit := lookup(); !hit || u != "bob.smith@lab.test" {
		t.Fatalf("second lookup: %s hit %v, want a cached bob", u, hit)
	}
	src.set("robert@lab.test", 2) // the identity role applied a new mapping URL
	clock.Add(generationEvery)
	deadline := time.Now().Add(10 * time.Second)
	for {
		u, _ := lookup()
		if u == "robert@lab.test" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s %v after the generation changed, want robert within generationEvery", u, generationEvery)
		}
		time.Sleep(time.Millisecond) // poll: the check runs in the background
	}
	if u, hit := lookup(); !hit || u != "robert@lab.test" {
		t.Fatalf("after the change: %s hit %v, want robert cached", u, hit)
	}

	// No generation from the role: entries live for their TTL, as before.
	old := newIdentityCache(&countingIdentity{}, 15*time.Minute, time.Minute, 100, clock.Now)
	for i, want := range []bool{false, true, true} {
		if _, hit, err := old.lookup(context.Background(), fp, nil, nil); err != nil || hit != want {
			t.Fatalf("role without generations, lookup %d: hit %v err %v, want hit %v", i, hit, err, want)
		}
		clock.Add(generationEvery)
	}
}
