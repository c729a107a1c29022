package edge

import (
	"context"
	"testing"
	"time"
)

// TestAttackIdentityCacheLateOldAnswer: after the edge learnt the identity
// role's new mapping generation, an answer of the old one arrives late (a
// lookup that started on the old settings before the reload). The edge
// follows the last answer, so for a while it holds the old generation: the
// late mapping is served, and entries of the new one are dropped. The
// attempt is to make that last: the old answer may be served only until the
// next generation check, generationEvery later, and never after it.
// Attacker review of 0ff8810; held (within the bound its doc states).
func TestAttackIdentityCacheLateOldAnswer(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC)}
	src := &remappedIdentity{user: "alice@lab.test", gen: 1}
	c := newIdentityCache(src, 15*time.Minute, time.Minute, 100, clock.Now)
	lookup := func(fp [32]byte) string {
		t.Helper()
		id, _, err := c.lookup(context.Background(), fp, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return id.UPN
	}
	phone, other := [32]byte{1}, [32]byte{2}
	if u := lookup(phone); u != "alice@lab.test" {
		t.Fatalf("before: %s", u)
	}
	src.set("bob@lab.test", 2) // the identity role's reload: the phone is bob's now
	if u := lookup(other); u != "bob@lab.test" {
		t.Fatalf("a lookup under the new settings: %s", u)
	}
	if u := lookup(phone); u != "bob@lab.test" {
		t.Fatalf("the phone after the edge heard generation 2: %s, want bob", u)
	}
	// The late answer of generation 1 for the phone.
	c.put(phone, Identity{UPN: "alice@lab.test", Realm: "LAB.TEST", Generation: 1})
	clock.Add(generationEvery)
	deadline := time.Now().Add(10 * time.Second)
	for lookup(phone) != "bob@lab.test" {
		if time.Now().After(deadline) {
			t.Fatalf("the late answer of the old mapping (alice) is still served %v after it arrived", generationEvery)
		}
		time.Sleep(time.Millisecond) // poll: the check runs in the background
	}
	clock.Add(time.Second)
	for range 3 {
		if u := lookup(phone); u != "bob@lab.test" {
			t.Fatalf("the old mapping came back: %s", u)
		}
	}
}
