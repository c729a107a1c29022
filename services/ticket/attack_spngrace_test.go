package ticket

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// TestAttackSPNGraceServesOnlyTheRemovedSPNForItsMinute asks the role
// over gRPC, as an edge does, while an SPN a reload removed is in its
// grace and after: an SPN never configured is refused during the grace,
// the removed SPN is refused once the minute is over, with a ticket
// cached during the grace or not, and a reload that does not bring it
// back (or one prepared and never committed) does not start the minute
// again. Held on main.
func TestAttackSPNGraceServesOnlyTheRemovedSPNForItsMinute(t *testing.T) {
	k := fakeRealm(t)
	clk := &clock{t: time.Now()}
	cfg := testConfig(k.Addr())
	svc, client := startService(t, cfg, WithClock(clk.Now))
	next := cfg
	next.SPNs = []string{otherSPN}
	if err := apply(t, svc, next); err != nil {
		t.Fatal(err)
	}
	ask := func(user, spn string) codes.Code {
		_, err := client.GetServiceTicket(context.Background(), &ticketv1.GetServiceTicketRequest{UserPrincipal: user, TargetSpn: spn})
		return status.Code(err)
	}
	for _, st := range []struct {
		name    string
		advance time.Duration
		before  func(t *testing.T)
		user    string
		spn     string
		want    codes.Code
	}{
		{name: "an SPN never configured, during the grace", user: "alice@lab.test", spn: "HTTP/evil.lab.test", want: codes.PermissionDenied},
		{name: "the removed SPN in another case, during the grace", user: "alice@lab.test", spn: "http/EXCHANGE.lab.test", want: codes.OK},
		{name: "a reload prepared and not committed near the end", advance: spnGrace - 2*time.Second, before: func(t *testing.T) {
			if _, err := svc.PrepareConfig(context.Background(), fileConfig(next)); err != nil {
				t.Fatal(err)
			}
		}, user: "bob.smith@lab.test", spn: exchSPN, want: codes.OK},
		{name: "a committed reload near the end", advance: time.Second, before: func(t *testing.T) {
			again := next
			again.CacheSize = 9
			if err := apply(t, svc, again); err != nil {
				t.Fatal(err)
			}
		}, user: "alice@lab.test", spn: exchSPN, want: codes.OK},
		{name: "the minute over, a ticket cached during it", advance: 2 * time.Second, user: "alice@lab.test", spn: exchSPN, want: codes.PermissionDenied},
		{name: "the minute over, another user", user: "bob.smith@lab.test", spn: exchSPN, want: codes.PermissionDenied},
		{name: "the minute over, another spelling", user: "alice@lab.test", spn: "HTTP/Exchange.Lab.Test", want: codes.PermissionDenied},
	} {
		clk.Add(st.advance)
		if st.before != nil {
			st.before(t)
		}
		if got := ask(st.user, st.spn); got != st.want {
			t.Fatalf("%s: %v, want %v", st.name, got, st.want)
		}
	}
}
