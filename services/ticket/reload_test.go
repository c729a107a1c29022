package ticket

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/msgtype"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
	"github.com/segmesh/segmesh/pkg/secret"
)

// fileConfig is the config.json that ConfigFrom turns into c.
func fileConfig(c Config) *config.Config {
	out := config.Default()
	out.KCD.Enabled = c.Enabled
	out.KCD.ServiceAccountUserName = c.Service
	out.KCD.ServiceAccountPassword = secret.New(c.Password)
	out.KCD.TargetSPN = strings.Join(c.SPNs, ",")
	out.KCD.Domains = nil
	for _, addr := range c.KDCs[c.Realm] {
		out.KCD.Domains = append(out.KCD.Domains, config.DomainPair{Domain: c.Realm, DomainController: addr})
	}
	out.Segmesh.Ticket.CacheSize = c.CacheSize
	out.Segmesh.Ticket.KDCTimeoutSeconds = int(c.KDCTimeout.Seconds())
	out.Segmesh.Ticket.MaxConcurrentKDCExchanges = c.MaxConcurrent
	out.Segmesh.Ticket.ArmorAccountUserName = c.ArmorAccount
	out.Segmesh.Ticket.ArmorAccountPassword = secret.New(c.ArmorPassword)
	return &out
}

// apply prepares next on svc and commits it; it returns PrepareConfig's error.
func apply(t *testing.T, svc *Service, next Config) error {
	t.Helper()
	commit, err := svc.PrepareConfig(context.Background(), fileConfig(next))
	if err != nil {
		return err
	}
	commit()
	return nil
}

// warm fills the cache with alice's and bob's tickets to both SPNs.
func warm(t *testing.T, svc *Service) {
	t.Helper()
	for _, u := range []string{"alice@lab.test", "bob.smith@lab.test"} {
		for _, spn := range []string{exchSPN, otherSPN} {
			if _, _, err := svc.Ticket(context.Background(), u, spn); err != nil && spn == exchSPN {
				t.Fatalf("%s to %s: %v", u, spn, err)
			}
		}
	}
}

// TestPrepareConfigAppliesLive: what a reload of the ticket role's
// settings costs the KDC and the cache, and what it refuses.
func TestPrepareConfigAppliesLive(t *testing.T) {
	sameAccount := fakeRealmConfig() // another KDC of the realm
	newAccount := fakeRealmConfig()
	newAccount.Service, newAccount.ServicePassword = "svc_seg2", "Svc2-Passw0rd!"
	cases := []struct {
		name       string
		armoured   bool
		other      kdctest.Config // the second KDC
		edit       func(c *Config, other *kdctest.KDC)
		wantErr    []string // PrepareConfig refuses, naming these
		wantAS     int      // AS exchanges at the first KDC for the change
		wantAS2    int      // AS exchanges at the second KDC
		wantCached int      // cache entries left of warm's 4
		newClient  bool
	}{
		{name: "an unrelated edit keeps the client and every ticket", other: sameAccount,
			edit: func(c *Config, _ *kdctest.KDC) { c.CacheSize = 500 }, wantCached: 4},
		{name: "an SPN no longer configured loses its tickets only", other: sameAccount,
			edit: func(c *Config, _ *kdctest.KDC) { c.SPNs = []string{exchSPN} }, wantCached: 2},
		{name: "a wrong password is refused with the KDC's code and fix", other: sameAccount,
			edit:    func(c *Config, _ *kdctest.KDC) { c.Password = "wrong" },
			wantErr: []string{"new password of svc_seg@LAB.TEST", "KDC_ERR_PREAUTH_FAILED (24)", "pre-authentication failed", "running configuration stays"}, wantAS: 2, wantCached: 4},
		{name: "an unknown account is refused", other: sameAccount,
			edit:    func(c *Config, _ *kdctest.KDC) { c.Service = "svc_nobody" },
			wantErr: []string{"new service account svc_nobody@LAB.TEST", "KDC_ERR_C_PRINCIPAL_UNKNOWN (6)"}, wantAS: 1, wantCached: 4},
		{name: "turning FAST armour off takes a restart", armoured: true, other: sameAccount,
			edit:    func(c *Config, _ *kdctest.KDC) { c.ArmorAccount, c.ArmorPassword = "", "" },
			wantErr: []string{"segmesh.ticket.armorAccountUserName", "takes a restart"}, wantCached: 4},
		{name: "new KDCs are proven with one AS exchange, tickets stay", other: sameAccount,
			edit:    func(c *Config, other *kdctest.KDC) { c.KDCs = map[string][]string{realm: {other.Addr()}} },
			wantAS2: 2, wantCached: 4, newClient: true},
		{name: "a new service account is proven, the old account's tickets go", other: newAccount,
			edit: func(c *Config, other *kdctest.KDC) {
				c.KDCs = map[string][]string{realm: {other.Addr()}}
				c.Service, c.Password = newAccount.Service, newAccount.ServicePassword
			}, wantAS2: 2, wantCached: 0, newClient: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kcfg := fakeRealmConfig()
			cfg := testConfig("")
			if tc.armoured {
				kcfg.ArmorAccount, kcfg.ArmorPassword = "SEGGW$", "Armor-Passw0rd!"
				cfg.ArmorAccount, cfg.ArmorPassword = kcfg.ArmorAccount, kcfg.ArmorPassword
			}
			k := kdctest.Start(t, kcfg)
			other := kdctest.Start(t, tc.other)
			cfg.KDCs = map[string][]string{realm: {k.Addr()}}
			svc, _ := startService(t, cfg)
			warm(t, svc)
			before := svc.engine()
			as, as2 := k.Count(kdctest.KindAS), other.Count(kdctest.KindAS)
			next := cfg
			tc.edit(&next, other)
			err := apply(t, svc, next)
			if tc.wantErr != nil {
				for _, w := range tc.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Fatalf("PrepareConfig = %v, want a refusal saying %q", err, w)
					}
				}
				if svc.engine() != before {
					t.Fatal("a refused configuration was put in force")
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := k.Count(kdctest.KindAS) - as; got != tc.wantAS {
				t.Errorf("AS exchanges at the first KDC: %d, want %d", got, tc.wantAS)
			}
			if got := other.Count(kdctest.KindAS) - as2; got != tc.wantAS2 {
				t.Errorf("AS exchanges at the second KDC: %d, want %d", got, tc.wantAS2)
			}
			if got := svc.cache.Len(); got != tc.wantCached {
				t.Errorf("cache holds %d entries, want %d", got, tc.wantCached)
			}
			if got := svc.engine().client != before.client; got != tc.newClient {
				t.Errorf("new client in force = %v, want %v", got, tc.newClient)
			}
			// alice is served after the change: from the cache, or by the
			// new account's KDC when the account changed.
			s4u, s4u2 := k.Count(kdctest.KindS4U2Proxy), other.Count(kdctest.KindS4U2Proxy)
			if _, _, err := svc.Ticket(context.Background(), "alice@lab.test", exchSPN); err != nil {
				t.Fatalf("alice after the change: %v", err)
			}
			fromFirst, fromOther := k.Count(kdctest.KindS4U2Proxy)-s4u, other.Count(kdctest.KindS4U2Proxy)-s4u2
			wantOther := 0
			if tc.wantCached == 0 {
				wantOther = 1
			}
			if fromFirst != 0 || fromOther != wantOther {
				t.Errorf("alice's ticket: %d S4U2Proxy at the first KDC, %d at the second; want 0 and %d", fromFirst, fromOther, wantOther)
			}
			if err := svc.Ready(context.Background()); err != nil {
				t.Errorf("not ready after the change: %v", err)
			}
		})
	}
}

// spnRemoved starts the role on a test clock with exchSPN and otherSPN
// and reloads it with otherSPN alone; it returns the fake KDC, the role,
// the clock and the configuration in force.
func spnRemoved(t *testing.T) (*kdctest.KDC, *Service, *clock, Config) {
	t.Helper()
	k := fakeRealm(t)
	clk := &clock{t: time.Now()}
	cfg := testConfig(k.Addr())
	svc, _ := startService(t, cfg, WithClock(clk.Now))
	next := cfg
	next.SPNs = []string{otherSPN}
	if err := apply(t, svc, next); err != nil {
		t.Fatal(err)
	}
	return k, svc, clk, next
}

// TestPrepareConfigRefusesARemovedSPNAfterRequestsUnderWay: a request that
// took its SPN from the configuration in force before a reload (an edge
// that has not switched yet: in one process the ticket role commits before
// the edge; a request retrying after a 401 keeps its SPN) still gets its
// ticket for a while after the SPN is removed; after spnGrace the removed
// SPN is refused, and the new default is asked of the KDC. Failed on main:
// the removed SPN was refused at once, so a one-save SPN change refused
// the requests under way even all-in-one.
func TestPrepareConfigRefusesARemovedSPNAfterRequestsUnderWay(t *testing.T) {
	k, svc, clk, next := spnRemoved(t)
	for _, st := range []struct {
		name    string
		advance time.Duration
		user    string
		want    codes.Code
	}{
		{"at the switch", 0, "alice@lab.test", codes.OK},
		{"just before the grace ends", spnGrace - time.Second, "bob@lab.test", codes.OK},
		{"once the grace ended", time.Second, "alice@lab.test", codes.PermissionDenied},
	} {
		clk.Add(st.advance)
		_, _, err := svc.Ticket(context.Background(), st.user, exchSPN)
		if status.Code(err) != st.want {
			t.Fatalf("%s: the removed SPN: %v, want %v", st.name, err, st.want)
		}
	}
	// A later reload that keeps the SPN removed does not bring it back.
	again := next
	again.CacheSize = 7
	if err := apply(t, svc, again); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Ticket(context.Background(), "alice@lab.test", exchSPN); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("the removed SPN after another reload: %v, want PermissionDenied", err)
	}
	// The default is otherSPN now: asked of the KDC, which does not
	// delegate to it.
	if _, _, err := svc.Ticket(context.Background(), "alice@lab.test", ""); status.Code(err) == codes.OK || k.Requests(kdctest.KindS4U2Proxy)[len(k.Requests(kdctest.KindS4U2Proxy))-1].SName.NameString[1] != "other.lab.test" {
		t.Fatalf("the default SPN after the change: %v, want the KDC's refusal for %s", err, otherSPN)
	}
}

// TestRemovedSPNGraceSurvivesAnotherReload: a second reload within the
// grace (another setting saved) does not cut short the grace of the SPN
// the first one removed, and an SPN put back is served as configured.
func TestRemovedSPNGraceSurvivesAnotherReload(t *testing.T) {
	_, svc, clk, next := spnRemoved(t)
	clk.Add(spnGrace / 2)
	again := next
	again.CacheSize = 7
	if err := apply(t, svc, again); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Ticket(context.Background(), "alice@lab.test", exchSPN); err != nil {
		t.Fatalf("within the first reload's grace, after a second reload: %v", err)
	}
	clk.Add(spnGrace/2 + time.Second)
	if _, _, err := svc.Ticket(context.Background(), "alice@lab.test", exchSPN); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("after the first reload's grace: %v, want PermissionDenied (the second reload does not extend it)", err)
	}
	back := again
	back.SPNs = []string{exchSPN, otherSPN}
	if err := apply(t, svc, back); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Ticket(context.Background(), "alice@lab.test", exchSPN); err != nil {
		t.Fatalf("the SPN put back: %v", err)
	}
}

// gate holds every TGS exchange while armed and not open; AS exchanges
// pass.
type gate struct {
	k       *kdctest.KDC
	armed   atomic.Bool
	once    sync.Once
	arrived chan struct{}
	open    chan struct{}
}

func (g *gate) Exchange(ctx context.Context, realm string, req []byte) ([]byte, error) {
	if g.armed.Load() && kdc.MessageType(req) == msgtype.KRB_TGS_REQ {
		g.once.Do(func() { close(g.arrived) })
		<-g.open
	}
	return g.k.Exchange(ctx, realm, req)
}

// TestPrepareConfigLetsRequestsUnderWayFinish: a request whose KDC exchange
// is under way when a new client is put in force finishes with a ticket.
func TestPrepareConfigLetsRequestsUnderWayFinish(t *testing.T) {
	k := fakeRealm(t)
	g := &gate{k: k, arrived: make(chan struct{}), open: make(chan struct{})}
	cfg := testConfig(k.Addr())
	svc, _ := startService(t, cfg, WithExchanger(g))
	g.armed.Store(true)
	done := make(chan error, 1)
	go func() {
		_, _, err := svc.Ticket(context.Background(), "alice@lab.test", exchSPN)
		done <- err
	}()
	<-g.arrived
	before := svc.engine()
	next := cfg
	next.KDCTimeout *= 2 // a new client, proven through the same fake KDC
	if err := apply(t, svc, next); err != nil {
		close(g.open)
		t.Fatal(err)
	}
	if svc.engine().client == before.client {
		t.Error("no new client in force")
	}
	close(g.open)
	if err := <-done; err != nil {
		t.Fatalf("the request under way failed: %v", err)
	}
}

// TestPrepareConfigDoesNotRetryARefusedPassword: the same wrong password
// given again within a minute (run reloads a file a second time when it
// encrypts a ".plaintext" secret in it) is refused without asking the KDC:
// each try counts towards the account's lockout. After a minute, or with
// another password, the KDC is asked again.
func TestPrepareConfigDoesNotRetryARefusedPassword(t *testing.T) {
	k := fakeRealm(t)
	clk := &clock{t: time.Now()}
	cfg := testConfig(k.Addr())
	svc, _ := startService(t, cfg, WithClock(clk.Now))
	wrong := cfg
	wrong.Password = "Wrong-Passw0rd!"
	steps := []struct {
		name    string
		next    Config
		advance time.Duration
		wantAS  int
	}{
		{name: "first try asks the KDC", next: wrong, wantAS: 2},
		{name: "the same within a minute does not", next: wrong, advance: 30 * time.Second, wantAS: 0},
		{name: "another wrong one does", next: Config{}, wantAS: 2},
		{name: "the first again after a minute does", next: wrong, advance: 61 * time.Second, wantAS: 2},
	}
	for _, st := range steps {
		if st.next.Realm == "" {
			st.next = cfg
			st.next.Password = "Other-Wrong-Passw0rd!"
		}
		clk.Add(st.advance)
		as := k.Count(kdctest.KindAS)
		err := apply(t, svc, st.next)
		if err == nil || !strings.Contains(err.Error(), "KDC_ERR_PREAUTH_FAILED") {
			t.Fatalf("%s: %v, want the KDC's refusal", st.name, err)
		}
		if got := k.Count(kdctest.KindAS) - as; got != st.wantAS {
			t.Errorf("%s: %d AS exchanges, want %d", st.name, got, st.wantAS)
		}
	}
}
