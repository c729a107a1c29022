package ticket

import (
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/secret"
	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

const (
	realm    = "LAB.TEST"
	exchSPN  = "HTTP/exchange.lab.test"
	otherSPN = "HTTP/other.lab.test"
)

func fakeRealm(tb testing.TB) *kdctest.KDC {
	tb.Helper()
	return kdctest.Start(tb, fakeRealmConfig())
}

func fakeRealmConfig() kdctest.Config {
	return kdctest.Config{
		Realm: realm, Service: "svc_seg", ServicePassword: "Svc-Passw0rd!",
		ServiceSPNs: []string{"HTTP/seg.lab.test"},
		Users:       []string{"alice", "bob", "eve"},
		UPNs:        map[string]string{"alice@lab.test": "alice", "bob.smith@lab.test": "bob", "eve@lab.test": "eve"},
		Sensitive:   []string{"eve"},
		DelegateTo:  []string{exchSPN},
		Targets:     map[string]string{exchSPN: "Exch-Passw0rd!", otherSPN: "Other-Passw0rd!"},
	}
}

func testConfig(addr string) Config {
	return Config{
		Enabled: true, Realm: realm, Service: "svc_seg", Password: "Svc-Passw0rd!",
		KDCs: map[string][]string{realm: {addr}}, SPNs: []string{exchSPN, otherSPN},
		CacheSize: 1000, KDCTimeout: 2 * time.Second, MaxConcurrent: 8,
		NegativeTTL: 30 * time.Second, MinRemaining: 2 * time.Minute,
		RefreshMargin: DefaultRefreshMargin, RefreshJitter: DefaultRefreshJitter, RenewRetry: DefaultRenewRetry,
	}
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// startService runs the role behind a real gRPC server on 127.0.0.1:0 and
// returns a client for it.
func startService(tb testing.TB, cfg Config, opts ...Option) (*Service, ticketv1.TicketServiceClient) {
	tb.Helper()
	c := config.Default()
	svc, err := New(role.Deps{Config: &c}, append([]Option{WithConfig(cfg)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	gs := grpc.NewServer()
	svc.RegisterGRPC(gs)
	go func() { _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = conn.Close()
		gs.Stop()
		_ = svc.Stop(context.Background())
	})
	return svc, ticketv1.NewTicketServiceClient(conn)
}

func TestGetServiceTicketIssuesAndCaches(t *testing.T) {
	k := fakeRealm(t)
	svc, cl := startService(t, testConfig(k.Addr()))
	if err := svc.Ready(context.Background()); err != nil {
		t.Fatalf("not ready after start: %v", err)
	}
	ctx := context.Background()
	for i, upn := range []string{"alice@lab.test", "bob.smith@lab.test"} {
		resp, err := cl.GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: upn, TargetSpn: exchSPN})
		if err != nil {
			t.Fatalf("%s: %v", upn, err)
		}
		if resp.Cached || len(resp.TicketDer) == 0 || len(resp.SessionKey) == 0 || resp.SessionKeyEtype != 18 {
			t.Fatalf("%s: bad response %+v", upn, resp)
		}
		if !strings.EqualFold(resp.ClientName, upn) && resp.ClientName != strings.Split(upn, "@")[0] {
			t.Fatalf("%s: cname %q", upn, resp.ClientName)
		}
		if !resp.EndTime.AsTime().After(time.Now()) {
			t.Fatalf("end time %v", resp.EndTime.AsTime())
		}
		if got := k.Count(kdctest.KindS4U2Proxy); got != i+1 {
			t.Fatalf("S4U2Proxy count %d", got)
		}
	}
	resp, err := cl.GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: "ALICE@lab.test", TargetSpn: exchSPN})
	if err != nil || !resp.Cached {
		t.Fatalf("second request not from cache: %v %v", resp, err)
	}
	if k.Count(kdctest.KindS4U2Self) != 2 {
		t.Fatalf("cache hit reached the KDC: %d", k.Count(kdctest.KindS4U2Self))
	}
	// The default SPN is the first configured one.
	if _, err := cl.GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: "alice@lab.test"}); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentMissesMakeOneExchange(t *testing.T) {
	k := fakeRealm(t)
	_, cl := startService(t, testConfig(k.Addr()))
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := cl.GetServiceTicket(context.Background(), &ticketv1.GetServiceTicketRequest{UserPrincipal: "alice@lab.test", TargetSpn: exchSPN}); err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed", failed.Load())
	}
	if s, p := k.Count(kdctest.KindS4U2Self), k.Count(kdctest.KindS4U2Proxy); s != 1 || p != 1 {
		t.Fatalf("100 concurrent first requests made %d S4U2Self and %d S4U2Proxy, want 1 and 1", s, p)
	}
}

func TestKDCRefusalsMapToStatusAndHint(t *testing.T) {
	k := fakeRealm(t)
	cfg := testConfig(k.Addr())
	_, cl := startService(t, cfg)
	tests := []struct {
		name     string
		upn, spn string
		code     codes.Code
		krb      int32
		hint     string
	}{
		{"unknown user", "nobody@lab.test", exchSPN, codes.NotFound, 6, "altSecurityIdentities"},
		{"SPN not delegated", "alice@lab.test", otherSPN, codes.PermissionDenied, 13, "msDS-AllowedToDelegateTo"},
		{"sensitive user", "eve@lab.test", exchSPN, codes.PermissionDenied, 13, "sensitive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cl.GetServiceTicket(context.Background(), &ticketv1.GetServiceTicketRequest{UserPrincipal: tt.upn, TargetSpn: tt.spn})
			if status.Code(err) != tt.code {
				t.Fatalf("code = %v (%v), want %v", status.Code(err), err, tt.code)
			}
			d := DetailOf(err)
			if d == nil || d.Code != tt.krb || !strings.Contains(d.Hint, tt.hint) {
				t.Fatalf("detail = %+v, want code %d and a hint naming %q", d, tt.krb, tt.hint)
			}
		})
	}
	// A definitive refusal is remembered: the KDC is not asked again at once.
	before := k.Count(kdctest.KindS4U2Self)
	_, err := cl.GetServiceTicket(context.Background(), &ticketv1.GetServiceTicketRequest{UserPrincipal: "nobody@lab.test", TargetSpn: exchSPN})
	if status.Code(err) != codes.NotFound || k.Count(kdctest.KindS4U2Self) != before {
		t.Fatalf("negative cache: %v, exchanges %d → %d", err, before, k.Count(kdctest.KindS4U2Self))
	}
	// An SPN that is not configured never reaches the KDC.
	_, err = cl.GetServiceTicket(context.Background(), &ticketv1.GetServiceTicketRequest{UserPrincipal: "alice@lab.test", TargetSpn: "HTTP/evil.lab.test"})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "kcd.targetSPN") {
		t.Fatalf("unconfigured SPN: %v", err)
	}
}

func TestSilentFallbackIsRefused(t *testing.T) {
	k := fakeRealm(t)
	_, cl := startService(t, testConfig(k.Addr()))
	k.SetWrongClient(kdctest.KindS4U2Proxy, true)
	_, err := cl.GetServiceTicket(context.Background(), &ticketv1.GetServiceTicketRequest{UserPrincipal: "alice@lab.test", TargetSpn: exchSPN})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "svc_seg") {
		t.Fatalf("a ticket for the service account was not refused: %v", err)
	}
}

func TestKDCStoppedAndStartedIsUsedAgainWithoutRestart(t *testing.T) {
	k := fakeRealm(t)
	cfg := testConfig(k.Addr())
	cfg.KDCTimeout = 300 * time.Millisecond
	_, cl := startService(t, cfg)
	ctx := context.Background()
	if _, err := cl.GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: "alice@lab.test", TargetSpn: exchSPN}); err != nil {
		t.Fatal(err)
	}
	k.Close()
	// Cached users are still served while the KDC is down.
	if _, err := cl.GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: "alice@lab.test", TargetSpn: exchSPN}); err != nil {
		t.Fatalf("cached user not served with the KDC down: %v", err)
	}
	_, err := cl.GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: "bob.smith@lab.test", TargetSpn: exchSPN})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("new user with the KDC down: %v, want Unavailable", err)
	}
	if err := k.Listen(); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: "bob.smith@lab.test", TargetSpn: exchSPN}); err != nil {
		t.Fatalf("KDC back but still failing: %v", err)
	}
}

func TestInvalidateForcesNewExchange(t *testing.T) {
	k := fakeRealm(t)
	_, cl := startService(t, testConfig(k.Addr()))
	ctx := context.Background()
	req := &ticketv1.GetServiceTicketRequest{UserPrincipal: "alice@lab.test", TargetSpn: exchSPN}
	if _, err := cl.GetServiceTicket(ctx, req); err != nil {
		t.Fatal(err)
	}
	r, err := cl.Invalidate(ctx, &ticketv1.InvalidateRequest{UserPrincipal: "Alice@Lab.Test"})
	if err != nil || r.Removed != 1 {
		t.Fatalf("invalidate: %v %v", r, err)
	}
	resp, err := cl.GetServiceTicket(ctx, req)
	if err != nil || resp.Cached || k.Count(kdctest.KindS4U2Proxy) != 2 {
		t.Fatalf("after invalidate: cached=%v err=%v proxies=%d", resp.GetCached(), err, k.Count(kdctest.KindS4U2Proxy))
	}
}

func TestRefreshAheadOfExpiry(t *testing.T) {
	tests := []struct {
		name            string
		refuseRenewal   bool
		renewals, pairs int // KDC exchanges of each kind after the refresh
	}{
		{"renewed where the KDC renews", false, 1, 1},
		{"new pair where it refuses (Samba)", true, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
			kc := fakeRealmConfig()
			kc.Now, kc.RefuseServiceRenewal = clk.Now, tt.refuseRenewal
			k := kdctest.Start(t, kc)
			svc, _ := startService(t, testConfig(k.Addr()), WithClock(clk.Now))
			ctx := context.Background()
			t1, _, err := svc.Ticket(ctx, "alice@lab.test", exchSPN)
			if err != nil {
				t.Fatal(err)
			}
			// Until less than the margin (75 to 85 minutes) is left, a hit
			// serves the ticket as it is.
			clk.Add(t1.EndTime.Sub(clk.Now()) - DefaultRefreshMargin - DefaultRefreshJitter - time.Minute)
			if t2, cached, err := svc.Ticket(ctx, "alice@lab.test", exchSPN); err != nil || !cached || t2 != t1 {
				t.Fatalf("hit before the margin: %v %v", cached, err)
			}
			// Inside the margin the hit waits for the refresh and gets the
			// new ticket.
			clk.Add(DefaultRefreshJitter + 2*time.Minute)
			t3, cached, err := svc.Ticket(ctx, "alice@lab.test", exchSPN)
			if err != nil || cached || t3 == t1 || !t3.EndTime.After(t1.EndTime) {
				t.Fatalf("refresh: cached=%v err=%v new end %v old end %v", cached, err, t3.EndTime, t1.EndTime)
			}
			if r, p := serviceRenewals(k), k.Count(kdctest.KindS4U2Proxy); r != tt.renewals || p != tt.pairs {
				t.Fatalf("renewals %d, pairs %d; want %d, %d", r, p, tt.renewals, tt.pairs)
			}
			if t4, cached, err := svc.Ticket(ctx, "alice@lab.test", exchSPN); err != nil || !cached || t4 != t3 {
				t.Fatalf("refreshed ticket not served from the cache: %v %v", cached, err)
			}
		})
	}
}

// serviceRenewals counts the renewals of tickets other than TGTs.
func serviceRenewals(k *kdctest.KDC) int {
	n := 0
	for _, r := range k.Requests(kdctest.KindRenew) {
		if r.SName.NameString[0] != "krbtgt" {
			n++
		}
	}
	return n
}

// TestRenewalPausedWhenRefused checks that a KDC refusing every renewal
// (Samba) costs refusalsToPause extra exchanges, not one per refresh.
func TestRenewalPausedWhenRefused(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
	kc := fakeRealmConfig()
	kc.Now, kc.RefuseServiceRenewal = clk.Now, true
	k := kdctest.Start(t, kc)
	svc, _ := startService(t, testConfig(k.Addr()), WithClock(clk.Now))
	ctx := context.Background()
	users := []string{"alice@lab.test", "bob.smith@lab.test", "alice", "bob"}
	for _, u := range users {
		if _, _, err := svc.Ticket(ctx, u, exchSPN); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(9 * time.Hour)
	for _, u := range users {
		if _, cached, err := svc.Ticket(ctx, u, exchSPN); err != nil || cached {
			t.Fatalf("%s: cached=%v err=%v", u, cached, err)
		}
	}
	if r := serviceRenewals(k); r != refusalsToPause {
		t.Fatalf("%d renewals tried, want %d then a pause", r, refusalsToPause)
	}
	if p := k.Count(kdctest.KindS4U2Proxy); p != 2*len(users) {
		t.Fatalf("%d pairs, want %d", p, 2*len(users))
	}
	st, err := json.Marshal(svc.statusSection())
	if err != nil || !strings.Contains(string(st), `"renewals_paused_until":"`+clk.Now().Add(DefaultRenewRetry).Format(time.RFC3339)) {
		t.Fatalf("status page: %s %v", st, err)
	}
	// After the pause (6 h) one renewal is tried again.
	clk.Add(9 * time.Hour)
	if _, _, err := svc.Ticket(ctx, "alice", exchSPN); err != nil {
		t.Fatal(err)
	}
	if r := serviceRenewals(k); r != refusalsToPause+1 {
		t.Fatalf("%d renewals after the pause, want %d", r, refusalsToPause+1)
	}
}

func TestLRUEviction(t *testing.T) {
	k := fakeRealm(t)
	cfg := testConfig(k.Addr())
	cfg.CacheSize = 2
	svc, _ := startService(t, cfg)
	ctx := context.Background()
	for _, u := range []string{"alice@lab.test", "bob.smith@lab.test", "alice@lab.test", "eve@lab.test"} {
		_, _, _ = svc.Ticket(ctx, u, exchSPN)
	}
	if svc.cache.Len() != 2 {
		t.Fatalf("cache holds %d entries, want 2", svc.cache.Len())
	}
	// bob was least recently used and is gone; alice stayed.
	if _, cached, _ := svc.Ticket(ctx, "alice@lab.test", exchSPN); !cached {
		t.Fatal("alice was evicted although recently used")
	}
	if _, cached, _ := svc.Ticket(ctx, "bob.smith@lab.test", exchSPN); cached {
		t.Fatal("bob was not evicted")
	}
}

func TestStartFailsOnWrongServicePassword(t *testing.T) {
	k := fakeRealm(t)
	cfg := testConfig(k.Addr())
	cfg.Password = "wrong"
	c := config.Default()
	svc, err := New(role.Deps{Config: &c}, WithConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	err = svc.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "svc_seg@LAB.TEST") || !strings.Contains(strings.ToLower(err.Error()), "password") {
		t.Fatalf("err = %v", err)
	}
}

func TestKCDOffServesNothingAndIsReady(t *testing.T) {
	c := config.Default()
	svc, err := New(role.Deps{Config: &c})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := svc.Ready(context.Background()); err != nil {
		t.Fatalf("KCD off should be ready: %v", err)
	}
	_, _, err = svc.Ticket(context.Background(), "alice@lab.test", exchSPN)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "kcd.enabled") {
		t.Fatalf("err = %v", err)
	}
}

func TestConfigFromGroupsDomainsAndAddsPort(t *testing.T) {
	c := config.Default()
	c.KCD = config.KCD{Enabled: true, TargetSPN: "HTTP/a.lab.test, HTTP/b.lab.test", ServiceAccountUserName: "svc_seg",
		Domains: []config.DomainPair{{Domain: "LAB.TEST", DomainController: "dc1.lab.test"}, {Domain: "LAB.TEST", DomainController: "dc2.lab.test:1088"},
			{Domain: "CHILD.LAB.TEST", DomainController: "dc3.child.lab.test"}}}
	got := ConfigFrom(&c)
	if got.Realm != "LAB.TEST" || strings.Join(got.KDCs["LAB.TEST"], ",") != "dc1.lab.test:88,dc2.lab.test:1088" ||
		strings.Join(got.OtherRealms, ",") != "CHILD.LAB.TEST" || len(got.SPNs) != 2 {
		t.Fatalf("got %+v", got)
	}
}

func ticketReq(upn string) *ticketv1.GetServiceTicketRequest {
	return &ticketv1.GetServiceTicketRequest{UserPrincipal: upn, TargetSpn: exchSPN}
}

// TestConfigFromArmor: segmesh.ticket.armorAccountUserName/Password reach
// the role's Config; either one alone is an error naming its key.
func TestConfigFromArmor(t *testing.T) {
	tests := []struct {
		name, account, password string
		wantKey                 string // "" means no problem
	}{
		{"both", " SEGGW$ ", "pw", ""},
		{"neither", "", "", ""},
		{"no password", "SEGGW$", "", "segmesh.ticket.armorAccountPassword"},
		{"no account", "", "pw", "segmesh.ticket.armorAccountUserName"},
	}
	for _, tt := range tests {
		c := config.Default()
		c.KCD = config.KCD{Enabled: true, TargetSPN: "HTTP/a.lab.test", ServiceAccountUserName: "svc_seg", ServiceAccountPassword: secret.New("s"),
			Domains: []config.DomainPair{{Domain: "LAB.TEST", DomainController: "dc1.lab.test"}}}
		c.Segmesh.Ticket.ArmorAccountUserName, c.Segmesh.Ticket.ArmorAccountPassword = tt.account, secret.New(tt.password)
		got := ConfigFrom(&c)
		if got.ArmorAccount != strings.TrimSpace(tt.account) || got.ArmorPassword != tt.password {
			t.Errorf("%s: armor %q/%q", tt.name, got.ArmorAccount, got.ArmorPassword)
		}
		var keys []string
		for _, p := range Validate(&c) {
			keys = append(keys, p.Key)
		}
		if want := []string{tt.wantKey}; tt.wantKey == "" && len(keys) != 0 || tt.wantKey != "" && !slices.Equal(keys, want) {
			t.Errorf("%s: problems at %v, want %q", tt.name, keys, tt.wantKey)
		}
	}
}
