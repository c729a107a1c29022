package certmap

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"
)

func key(s string) fingerprint { return sha256.Sum256([]byte(s)) }

func TestCacheTTL(t *testing.T) {
	c := newClock()
	cc := newCache(10, 10*time.Minute, time.Minute, c.Now)
	cc.put(key("bob"), answer{mapping: Mapping{UPN: "bob@lab.test"}})
	cc.put(key("eve"), answer{err: &NotFoundError{}})
	steps := []struct {
		advance       time.Duration
		bob, eve      bool
		wantEntriesLE int
	}{
		{0, true, true, 2},
		{59 * time.Second, true, true, 2},
		{time.Second, true, false, 1},      // 1m: the miss has expired
		{8 * time.Minute, true, false, 1},  // 9m
		{59 * time.Second, true, false, 1}, // 9m59s
		{time.Second, false, false, 0},     // 10m: the mapping has expired
	}
	for i, s := range steps {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			c.Advance(s.advance)
			a, ok := cc.get(key("bob"))
			if ok != s.bob || (ok && a.mapping.UPN != "bob@lab.test") {
				t.Errorf("bob: got %+v, %v; want present %v", a, ok, s.bob)
			}
			a, ok = cc.get(key("eve"))
			if ok != s.eve || (ok && !errors.Is(a.err, ErrNotFound)) {
				t.Errorf("eve: got %+v, %v; want present %v", a, ok, s.eve)
			}
			if n := cc.len(); n > s.wantEntriesLE {
				t.Errorf("%d entries, want at most %d", n, s.wantEntriesLE)
			}
		})
	}
}

func TestCacheBoundedLRU(t *testing.T) {
	c := newClock()
	cc := newCache(3, time.Hour, time.Minute, c.Now)
	for _, k := range []string{"a", "b", "c"} {
		cc.put(key(k), answer{mapping: Mapping{UPN: k}})
	}
	if _, ok := cc.get(key("a")); !ok { // a becomes the most recent
		t.Fatal("a missing")
	}
	cc.put(key("d"), answer{mapping: Mapping{UPN: "d"}}) // evicts b, the least recent
	for k, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if _, ok := cc.get(key(k)); ok != want {
			t.Errorf("%s present = %v, want %v", k, ok, want)
		}
	}
	if cc.len() != 3 || cc.evicted != 1 {
		t.Errorf("len %d evicted %d, want 3 and 1", cc.len(), cc.evicted)
	}
	cc.purge()
	if cc.len() != 0 {
		t.Errorf("len after purge = %d", cc.len())
	}
}

func TestCacheDisabled(t *testing.T) {
	c := newClock()
	for _, tc := range []struct {
		name        string
		size        int
		ttl, negTTL time.Duration
		keepHit     bool
		keepMiss    bool
	}{
		{"size negative", -1, time.Hour, time.Minute, false, false},
		{"ttl negative", 10, -1, time.Minute, false, false},
		{"negative TTL off", 10, time.Hour, -1, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := newCache(tc.size, tc.ttl, tc.negTTL, c.Now)
			cc.put(key("hit"), answer{mapping: Mapping{UPN: "x"}})
			cc.put(key("miss"), answer{err: &NotFoundError{}})
			if _, ok := cc.get(key("hit")); ok != tc.keepHit {
				t.Errorf("hit cached = %v, want %v", ok, tc.keepHit)
			}
			if _, ok := cc.get(key("miss")); ok != tc.keepMiss {
				t.Errorf("miss cached = %v, want %v", ok, tc.keepMiss)
			}
		})
	}
}
