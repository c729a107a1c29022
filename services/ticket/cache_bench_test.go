package ticket

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/s4u"
)

// BenchmarkCacheHit measures the ticket role's hit path (lookup, LRU touch),
// in parallel across GOMAXPROCS goroutines over 1,000 users.
func BenchmarkCacheHit(b *testing.B) {
	now := time.Now()
	tk := &s4u.Ticket{StartTime: now, EndTime: now.Add(10 * time.Hour)}
	c := newTicketCache(func(context.Context, string, string, *s4u.Ticket) (*s4u.Ticket, error) { return tk, nil },
		Config{CacheSize: 10000, RefreshMargin: DefaultRefreshMargin, RefreshJitter: DefaultRefreshJitter, MinRemaining: 2 * time.Minute}, func() time.Time { return now }, nil)
	users := make([]string, 1000)
	for i := range users {
		users[i] = fmt.Sprintf("user%04d@lab.test", i)
		if _, _, err := c.Get(context.Background(), users[i], exchSPN); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, cached, err := c.Get(context.Background(), users[i%len(users)], exchSPN); err != nil || !cached {
				b.Fatal("miss")
			}
			i++
		}
	})
}

// BenchmarkGetServiceTicketGRPC measures a cached GetServiceTicket through
// a real gRPC server on loopback (what a split-mode edge pays on its own miss).
func BenchmarkGetServiceTicketGRPC(b *testing.B) {
	k := fakeRealm(b)
	_, cl := startService(b, testConfig(k.Addr()))
	req := ticketReq("alice@lab.test")
	if _, err := cl.GetServiceTicket(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := cl.GetServiceTicket(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdIssue measures one S4U2Self + S4U2Proxy pair against the fake
// KDC on loopback, cache bypassed (client and fake-KDC CPU together).
func BenchmarkColdIssue(b *testing.B) {
	k := fakeRealm(b)
	svc, _ := startService(b, testConfig(k.Addr()))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := svc.engine().client.ServiceTicket(context.Background(), "alice@lab.test", exchSPN); err != nil {
			b.Fatal(err)
		}
	}
}
