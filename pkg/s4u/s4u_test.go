package s4u_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/chksumtype"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
	"github.com/segmesh/segmesh/pkg/s4u"
)

const (
	realm       = "LAB.TEST"
	svcPassword = "Svc-Passw0rd!"
	target      = "HTTP/exchange.lab.test"
)

func labConfig() kdctest.Config {
	return kdctest.Config{
		Realm: realm, Service: "svc_seg", ServicePassword: svcPassword,
		ServiceSPNs: []string{"HTTP/seg.lab.test"},
		Users:       []string{"alice", "bob", "carol", "eve"},
		UPNs:        map[string]string{"alice@lab.test": "alice", "bob.smith@lab.test": "bob", "eve@lab.test": "eve"},
		Sensitive:   []string{"eve"},
		DelegateTo:  []string{target},
		Targets:     map[string]string{target: "Exch-Passw0rd!", "HTTP/other.lab.test": "Other-Passw0rd!"},
	}
}

// clock is a settable clock shared by the client and the fake KDC.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// clockedClient starts a KDC with labConfig (edited by edit when not nil)
// and a client, both on one test clock starting at 2026-11-25 08:00 UTC.
func clockedClient(tb testing.TB, edit func(*kdctest.Config)) (*clock, *kdctest.KDC, *s4u.Client) {
	tb.Helper()
	clk := &clock{t: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
	cfg := labConfig()
	cfg.Now = clk.Now
	if edit != nil {
		edit(&cfg)
	}
	k := kdctest.Start(tb, cfg)
	c := newClient(tb, newTransport(tb, map[string][]string{realm: {k.Addr()}}), func(c *s4u.Config) { c.Now = clk.Now })
	return clk, k, c
}

func newTransport(tb testing.TB, realms map[string][]string) *kdc.Transport {
	tb.Helper()
	tr, err := kdc.New(kdc.Config{Realms: realms, Timeout: 2 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

func newClient(tb testing.TB, ex kdc.Exchanger, mod func(*s4u.Config)) *s4u.Client {
	tb.Helper()
	cfg := s4u.Config{Realm: "lab.test", Service: "svc_seg", Password: svcPassword, Exchanger: ex}
	if mod != nil {
		mod(&cfg)
	}
	c, err := s4u.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// checkTicket decrypts a ticket with the target's key and checks its client.
func checkTicket(t *testing.T, k *kdctest.KDC, tk *s4u.Ticket, wantName string, wantRealm string) {
	t.Helper()
	key, err := k.ServiceKey(target)
	if err != nil {
		t.Fatal(err)
	}
	var dec messages.Ticket
	if err := dec.Unmarshal(tk.DER); err != nil {
		t.Fatalf("ticket DER: %v", err)
	}
	if err := dec.Decrypt(key); err != nil {
		t.Fatalf("ticket does not decrypt with the target key: %v", err)
	}
	e := dec.DecryptedEncPart
	if got := strings.Join(e.CName.NameString, "/"); got != wantName || e.CRealm != wantRealm {
		t.Fatalf("ticket client %s@%s, want %s@%s", got, e.CRealm, wantName, wantRealm)
	}
	if !tk.CName.Equal(e.CName) || tk.CRealm != e.CRealm {
		t.Fatalf("reply client %v@%s differs from the ticket's %v@%s", tk.CName, tk.CRealm, e.CName, e.CRealm)
	}
	if e.Key.KeyType != tk.SessionKey.KeyType || string(e.Key.KeyValue) != string(tk.SessionKey.KeyValue) {
		t.Fatal("session key differs from the ticket's")
	}
	if got := strings.Join(tk.SName.NameString, "/"); got != target || tk.SRealm != realm {
		t.Fatalf("server %s@%s", got, tk.SRealm)
	}
	if !tk.EndTime.After(tk.StartTime) || tk.AuthTime.IsZero() {
		t.Fatalf("times: auth %v start %v end %v", tk.AuthTime, tk.StartTime, tk.EndTime)
	}
}

func TestServiceTicket(t *testing.T) {
	k := kdctest.Start(t, labConfig())
	c := newClient(t, newTransport(t, map[string][]string{realm: {k.Addr()}}), nil)
	tests := []struct {
		user, wantName string
	}{
		{"alice", "alice"},
		{"alice@lab.test", "alice@lab.test"},
		{"bob.smith@lab.test", "bob.smith@lab.test"},
		{"BOB.SMITH@LAB.TEST", "BOB.SMITH@LAB.TEST"},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			tk, err := c.ServiceTicket(context.Background(), tt.user, target)
			if err != nil {
				t.Fatal(err)
			}
			checkTicket(t, k, tk, tt.wantName, realm)
		})
	}
	if n := k.Count(kdctest.KindAS); n != 2 {
		t.Fatalf("AS requests = %d, want 2 (one pre-auth round trip, TGT reused)", n)
	}
}

func TestCanonicalizedEnterpriseName(t *testing.T) {
	cfg := labConfig()
	cfg.CanonicalizeEnterprise = true
	k := kdctest.Start(t, cfg)
	c := newClient(t, newTransport(t, map[string][]string{realm: {k.Addr()}}), nil)
	tk, err := c.ServiceTicket(context.Background(), "bob.smith@lab.test", target)
	if err != nil {
		t.Fatal(err)
	}
	checkTicket(t, k, tk, "bob", realm)
}

func TestWireDetails(t *testing.T) {
	tests := []struct {
		name      string
		etype     int32
		wantCksum int32
	}{
		{"aes256", etypeID.AES256_CTS_HMAC_SHA1_96, chksumtype.HMAC_SHA1_96_AES256},
		{"aes128", etypeID.AES128_CTS_HMAC_SHA1_96, chksumtype.HMAC_SHA1_96_AES128},
		{"rc4", etypeID.RC4_HMAC, chksumtype.KERB_CHECKSUM_HMAC_MD5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := labConfig()
			cfg.SessionEtype = tt.etype
			k := kdctest.Start(t, cfg)
			// An RC4 session key comes from a legacy domain, where RC4 is allowed.
			allow := func(c *s4u.Config) { c.AllowRC4 = tt.etype == etypeID.RC4_HMAC }
			c := newClient(t, newTransport(t, map[string][]string{realm: {k.Addr()}}), allow)
			if _, err := c.ServiceTicket(context.Background(), "bob.smith@lab.test", target); err != nil {
				t.Fatal(err)
			}
			self := k.Requests(kdctest.KindS4U2Self)
			proxy := k.Requests(kdctest.KindS4U2Proxy)
			if len(self) != 1 || len(proxy) != 1 {
				t.Fatalf("requests: %d S4U2Self, %d S4U2Proxy", len(self), len(proxy))
			}
			s, p := self[0], proxy[0]
			if s.PATypes[0] != patype.PA_TGS_REQ || p.PATypes[0] != patype.PA_TGS_REQ {
				t.Fatalf("PA-TGS-REQ not first: %v / %v", s.PATypes, p.PATypes)
			}
			if s.ForUserName.NameType != s4u.NameTypeEnterprise || s.ForUserName.NameString[0] != "bob.smith@lab.test" || s.ForUserRealm != realm {
				t.Fatalf("PA-FOR-USER names %v@%s", s.ForUserName, s.ForUserRealm)
			}
			if s.SessionKeyType != tt.etype || s.ForUserCksumType != tt.wantCksum || s.BodyChecksumType != tt.wantCksum || p.BodyChecksumType != tt.wantCksum {
				t.Fatalf("session etype %d: PA-FOR-USER checksum %d, body checksums %d/%d, want %d",
					s.SessionKeyType, s.ForUserCksumType, s.BodyChecksumType, p.BodyChecksumType, tt.wantCksum)
			}
			if !types.IsFlagSet(&s.KDCOptions, flags.Forwardable) || types.IsFlagSet(&s.KDCOptions, s4u.OptionCNameInAddlTkt) {
				t.Fatal("S4U2Self options: want forwardable, no cname-in-addl-tkt")
			}
			if !types.IsFlagSet(&p.KDCOptions, s4u.OptionCNameInAddlTkt) || !types.IsFlagSet(&p.KDCOptions, flags.Forwardable) {
				t.Fatal("S4U2Proxy options: want cname-in-addl-tkt (bit 14) and forwardable")
			}
			if p.AdditionalTickets != 1 {
				t.Fatalf("S4U2Proxy additional tickets = %d", p.AdditionalTickets)
			}
			if !types.IsFlagSet(&p.PACOptions, s4u.PACOptionResourceBasedDelegation) {
				t.Fatal("S4U2Proxy PA-PAC-OPTIONS without the resource-based delegation bit")
			}
			if s.Realm != realm || p.Realm != realm {
				t.Fatalf("request realms %q %q, want upper case", s.Realm, p.Realm)
			}
			if got := strings.Join(s.SName.NameString, "/"); got != "svc_seg" {
				t.Fatalf("S4U2Self sname %s, want the service account", got)
			}
			as := k.Requests(kdctest.KindAS)
			if len(as) != 2 || as[0].Code != errorcode.KDC_ERR_PREAUTH_REQUIRED || as[1].Code != 0 {
				t.Fatalf("AS exchange: %+v", as)
			}
			if !types.IsFlagSet(&as[1].KDCOptions, flags.Forwardable) || !types.IsFlagSet(&as[1].KDCOptions, flags.Renewable) {
				t.Fatal("AS-REQ must ask for a forwardable, renewable TGT")
			}
		})
	}
}

func TestServiceSPNAsSelfName(t *testing.T) {
	k := kdctest.Start(t, labConfig())
	c := newClient(t, newTransport(t, map[string][]string{realm: {k.Addr()}}), func(c *s4u.Config) { c.ServiceSPN = "HTTP/seg.lab.test" })
	tk, err := c.ServiceTicket(context.Background(), "alice", target)
	if err != nil {
		t.Fatal(err)
	}
	checkTicket(t, k, tk, "alice", realm)
	if got := strings.Join(k.Requests(kdctest.KindS4U2Self)[0].SName.NameString, "/"); got != "HTTP/seg.lab.test" {
		t.Fatalf("sname %s", got)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name      string
		kdc       func(*kdctest.Config)
		client    func(*s4u.Config)
		inject    func(*kdctest.KDC)
		user, spn string
		code      int32
		stage     s4u.Stage
		hint      []string
		notFwd    bool // the S4U2Self ticket was not forwardable
	}{
		{name: "unknown user", user: "nobody@lab.test", spn: target, code: 6, stage: s4u.StageS4U2Self,
			hint: []string{"altSecurityIdentities", "Kerberos:USERNAME@DOMAIN.NAME", "certificate mapping"}},
		{name: "carol by an altSecurityIdentities name", user: "carol.ext@LAB.TEST", spn: target, code: 6, stage: s4u.StageS4U2Self,
			hint: []string{"altSecurityIdentities"}},
		{name: "SPN not delegated", user: "alice", spn: "HTTP/other.lab.test", code: 13, stage: s4u.StageS4U2Proxy,
			hint: []string{"msDS-AllowedToDelegateTo", "Use any authentication protocol", "samba-tool delegation add-service",
				"msDS-AllowedToActOnBehalfOfOtherIdentity", "PrincipalsAllowedToDelegateToAccount", "samba-tool delegation add-principal", "Protected Users"}},
		{name: "Kerberos-only delegation", kdc: func(c *kdctest.Config) { c.NoProtocolTransition = true }, user: "alice", spn: target,
			code: 13, stage: s4u.StageS4U2Proxy, notFwd: true,
			hint: []string{"not forwardable", "Use Kerberos only", "Use any authentication protocol", "for-any-protocol", "sensitive"}},
		{name: "unknown SPN", user: "alice", spn: "HTTP/nowhere.lab.test", code: 7, stage: s4u.StageS4U2Proxy, hint: []string{"setspn"}},
		{name: "sensitive user", user: "eve@lab.test", spn: target, code: 13, stage: s4u.StageS4U2Proxy, notFwd: true, hint: []string{"sensitive"}},
		{name: "non-forwardable TGT", kdc: func(c *kdctest.Config) { c.NonForwardableTGT = true }, user: "alice", spn: target,
			notFwd: true,
			code:   13, stage: s4u.StageS4U2Proxy},
		{name: "wrong password", client: func(c *s4u.Config) { c.Password = "wrong-Secret-42" }, user: "alice", spn: target,
			code: 24, stage: s4u.StageASReq, hint: []string{"password"}},
		{name: "wrong account", client: func(c *s4u.Config) { c.Service = "svc_nope" }, user: "alice", spn: target,
			code: 6, stage: s4u.StageASReq, hint: []string{"service account"}},
		{name: "disabled user", inject: func(k *kdctest.KDC) { k.FailWith(kdctest.KindS4U2Self, 18) }, user: "alice", spn: target,
			code: 18, stage: s4u.StageS4U2Self, hint: []string{"disabled"}},
		{name: "clock skew", inject: func(k *kdctest.KDC) { k.FailWith(kdctest.KindS4U2Proxy, 37) }, user: "alice", spn: target,
			code: 37, stage: s4u.StageS4U2Proxy, hint: []string{"NTP"}},
		{name: "strict KDC, checksum", inject: func(k *kdctest.KDC) { k.FailWith(kdctest.KindS4U2Self, 41) }, user: "alice", spn: target,
			code: 41, stage: s4u.StageS4U2Self, hint: []string{"checksum type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := labConfig()
			if tt.kdc != nil {
				tt.kdc(&cfg)
			}
			k := kdctest.Start(t, cfg)
			if tt.inject != nil {
				tt.inject(k)
			}
			var password string
			c := newClient(t, newTransport(t, map[string][]string{realm: {k.Addr()}}), func(c *s4u.Config) {
				if tt.client != nil {
					tt.client(c)
				}
				password = c.Password
			})
			_, err := c.ServiceTicket(context.Background(), tt.user, tt.spn)
			var ke *s4u.KDCError
			if !errors.As(err, &ke) {
				t.Fatalf("err = %v (%T), want *KDCError", err, err)
			}
			if ke.Code != tt.code || ke.Stage != tt.stage || ke.Realm != realm || ke.Name != s4u.CodeName(tt.code) || strings.Contains(ke.Name, " ") {
				t.Fatalf("got code %d stage %s realm %s, want %d %s", ke.Code, ke.Stage, ke.Realm, tt.code, tt.stage)
			}
			if !errors.Is(err, &s4u.KDCError{Code: tt.code}) || errors.Is(err, &s4u.KDCError{Code: tt.code + 1}) {
				t.Fatal("errors.Is by code does not work")
			}
			var kerr *kdc.KRBError
			if !errors.As(err, &kerr) || kerr.Code() != tt.code {
				t.Fatal("KDCError does not unwrap to the transport's KRBError")
			}
			for _, h := range tt.hint {
				if !strings.Contains(ke.Hint, h) {
					t.Errorf("hint %q lacks %q", ke.Hint, h)
				}
			}
			if ke.NotForwardable != tt.notFwd {
				t.Errorf("NotForwardable = %v, want %v", ke.NotForwardable, tt.notFwd)
			}
			if s4u.IsTemporary(err) {
				t.Error("a definitive KDC answer reported temporary")
			}
			if strings.Contains(err.Error(), password) {
				t.Fatal("error text contains the password")
			}
		})
	}
}

func TestSilentFallbackRefused(t *testing.T) {
	for _, kind := range []kdctest.Kind{kdctest.KindS4U2Self, kdctest.KindS4U2Proxy} {
		t.Run(string(kind), func(t *testing.T) {
			k := kdctest.Start(t, labConfig())
			k.SetWrongClient(kind, true)
			c := newClient(t, newTransport(t, map[string][]string{realm: {k.Addr()}}), nil)
			tk, err := c.ServiceTicket(context.Background(), "alice", target)
			if !errors.Is(err, s4u.ErrWrongClient) || tk != nil {
				t.Fatalf("err = %v, want ErrWrongClient", err)
			}
			var we *s4u.WrongClientError
			if !errors.As(err, &we) || we.Stage != s4u.Stage(kind) || !strings.Contains(we.Got, "svc_seg") {
				t.Fatalf("WrongClientError = %+v", we)
			}
			if s4u.IsTemporary(err) {
				t.Fatal("wrong client reported temporary")
			}
		})
	}
}

func TestCrossRealmReferral(t *testing.T) {
	const other = "CORP.TEST"
	primaryCfg := labConfig()
	primaryCfg.Trusts = map[string]string{other: "Trust-Passw0rd!"}
	primary := kdctest.Start(t, primaryCfg)
	corp := kdctest.Start(t, kdctest.Config{
		Realm: other, Service: "unused", ServicePassword: "unused",
		Users: []string{"dave"}, UPNs: map[string]string{"dave@corp.test": "dave"},
		Trusts: map[string]string{realm: "Trust-Passw0rd!"},
	})
	tr := newTransport(t, map[string][]string{realm: {primary.Addr()}, other: {corp.Addr()}})
	c := newClient(t, tr, func(c *s4u.Config) { c.Domains = []string{"corp.test"} })
	tk, err := c.ServiceTicket(context.Background(), "dave@corp.test", target)
	if err != nil {
		t.Fatal(err)
	}
	checkTicket(t, primary, tk, "dave@corp.test", other)
	counts := map[string]int{
		"primary tgt": primary.Count(kdctest.KindTGT), "primary self": primary.Count(kdctest.KindS4U2Self),
		"primary proxy": primary.Count(kdctest.KindS4U2Proxy), "corp self": corp.Count(kdctest.KindS4U2Self),
	}
	for name, n := range counts {
		if n != 1 {
			t.Errorf("%s exchanges = %d, want 1", name, n)
		}
	}
	ref := corp.Requests(kdctest.KindS4U2Self)[0]
	if ref.ForUserRealm != other || ref.PATypes[0] != patype.PA_TGS_REQ {
		t.Fatalf("referral leg: %+v", ref)
	}
	// A second user of the other realm reuses the cross-realm TGT.
	if _, err := c.S4U2Self(context.Background(), "dave@corp.test"); err != nil {
		t.Fatal(err)
	}
	if n := primary.Count(kdctest.KindTGT); n != 1 {
		t.Fatalf("cross-realm TGT fetched %d times", n)
	}
	// An unknown user of the other realm fails there with code 6.
	_, err = c.S4U2Self(context.Background(), "zed@corp.test")
	var ke *s4u.KDCError
	if !errors.As(err, &ke) || ke.Code != 6 || ke.Stage != s4u.StageReferral || ke.Realm != other {
		t.Fatalf("err = %v", err)
	}
}

func TestConfigAndInput(t *testing.T) {
	bad := []s4u.Config{
		{},
		{Realm: realm, Service: "svc@x", Password: "p", Exchanger: newTransport(t, map[string][]string{realm: {"127.0.0.1:1"}})},
		{Realm: realm, Service: "svc", Password: "p", Exchanger: newTransport(t, map[string][]string{realm: {"127.0.0.1:1"}}), Etypes: []int32{999}},
	}
	for i, cfg := range bad {
		if _, err := s4u.New(cfg); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
	c := newClient(t, newTransport(t, map[string][]string{realm: {"127.0.0.1:1"}}), func(c *s4u.Config) { c.Domains = []string{"corp.test"} })
	users := []struct {
		in       string
		ok       bool
		nameType int32
		realm    string
	}{
		{"alice", true, 1, realm},
		{"bob.smith@lab.test", true, 10, realm},
		{"dave@corp.test", true, 10, "CORP.TEST"},
		{"x@alt-suffix.example", true, 10, realm},
		{"", false, 0, ""},
		{"@lab.test", false, 0, ""},
		{"a@", false, 0, ""},
		{`LAB\alice`, false, 0, ""},
		{"HTTP/host", false, 0, ""},
	}
	for _, u := range users {
		n, r, err := c.ParseUser(u.in)
		if (err == nil) != u.ok || (u.ok && (n.NameType != u.nameType || r != u.realm || n.NameString[0] != u.in)) {
			t.Errorf("ParseUser(%q) = %v %q %v", u.in, n, r, err)
		}
	}
	if _, err := c.TGT(context.Background(), "nowhere.test"); err == nil {
		t.Error("TGT for an unconfigured realm")
	}
	for _, spn := range []string{"HTTP", "HTTP/", "/host", "HTTP/host@"} {
		if _, err := c.S4U2Proxy(context.Background(), &s4u.Ticket{}, spn); err == nil {
			t.Errorf("SPN %q accepted", spn)
		}
	}
}

func TestHints(t *testing.T) {
	for _, code := range []int32{6, 7, 12, 13, 14, 18, 24, 25, 31, 32, 36, 37, 41, 50} {
		for _, st := range []s4u.Stage{s4u.StageASReq, s4u.StageS4U2Self, s4u.StageS4U2Proxy, s4u.StageReferral} {
			if s4u.Hint(st, code) == "" {
				t.Errorf("no hint for %d at %s", code, st)
			}
		}
	}
	if s4u.Hint(s4u.StageS4U2Self, 3) != "" {
		t.Error("hint for an unmapped code")
	}
}

func BenchmarkS4U(b *testing.B) { benchFakeKDC(b, benchPairs) }

// benchFakeKDC runs bench against the fake KDC twice: in the same process
// (no network) and through kdc.Transport over loopback TCP.
func benchFakeKDC(b *testing.B, bench func(*testing.B, *s4u.Client)) {
	b.Run("in-process", func(b *testing.B) {
		k, err := kdctest.New(labConfig())
		if err != nil {
			b.Fatal(err)
		}
		bench(b, newClient(b, k, nil))
	})
	b.Run("loopback-tcp", func(b *testing.B) {
		k := kdctest.Start(b, labConfig())
		bench(b, newClient(b, newTransport(b, map[string][]string{realm: {k.Addr()}}), nil))
	})
}

func benchPairs(b *testing.B, c *s4u.Client) {
	ctx := context.Background()
	if _, err := c.TGT(ctx, "lab.test"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start, n := cpuTime(), 0
	for b.Loop() {
		if _, err := c.ServiceTicket(ctx, "bob.smith@lab.test", target); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if used := cpuTime() - start; used > 0 && n > 0 {
		b.ReportMetric(float64(used.Nanoseconds())/float64(n), "cpu-ns/op")
	}
}

func TestCodeName(t *testing.T) {
	tests := map[int32]string{6: "KDC_ERR_C_PRINCIPAL_UNKNOWN", 13: "KDC_ERR_BADOPTION", 37: "KRB_AP_ERR_SKEW", 41: "KRB_AP_ERR_MODIFIED", 4242: "KRB_ERROR_4242"}
	for code, want := range tests {
		if got := s4u.CodeName(code); got != want {
			t.Errorf("CodeName(%d) = %q, want %q", code, got, want)
		}
	}
}
