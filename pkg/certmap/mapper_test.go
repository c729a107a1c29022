package certmap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
	"github.com/segmesh/segmesh/pkg/secret"
)

func TestMapAnswers(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	m := newMapper(t, l.config(nil))
	tests := []struct {
		name    string
		der     []byte
		upn, dn string
		check   func(t *testing.T, err error)
	}{
		{name: "bob without UPN in the certificate", der: l.bob.Raw, upn: "bob.smith@lab.test", dn: "CN=Bob Smith,CN=Users," + testBase},
		{name: "mallory's certificate names alice but maps to mallory", der: l.mallory.Raw, upn: "mallory@lab.test", dn: "CN=Mallory,CN=Users," + testBase},
		{name: "alice", der: l.alice.Raw, upn: "alice@lab.test", dn: "CN=Alice,CN=Users," + testBase},
		{name: "unpublished", der: l.unpublished.Raw, check: func(t *testing.T, err error) {
			var nf *NotFoundError
			if !errors.Is(err, ErrNotFound) || !errors.As(err, &nf) || nf.BaseDN != testBase {
				t.Fatalf("err = %v, want NotFoundError under %s", err, testBase)
			}
			for _, want := range []string{"publish the certificate to the user's userCertificate", "index userCertificate and replicate it to the Global Catalog"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks hint %q", err, want)
				}
			}
		}},
		{name: "published on two users", der: l.dup.Raw, check: func(t *testing.T, err error) {
			var amb *AmbiguousError
			if !errors.As(err, &amb) || len(amb.DNs) != 2 || !strings.Contains(err.Error(), "CN=Dup One") || !strings.Contains(err.Error(), "CN=Dup Two") {
				t.Fatalf("err = %v, want AmbiguousError naming both DNs", err)
			}
		}},
		{name: "user without UPN", der: l.noUPNUser.Raw, check: func(t *testing.T, err error) {
			var nu *NoUPNError
			if !errors.As(err, &nu) || nu.DN != "CN=No UPN,CN=Users,"+testBase || !strings.Contains(err.Error(), nu.DN) {
				t.Fatalf("err = %v, want NoUPNError naming the DN", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Map(t.Context(), tt.der)
			if tt.check != nil {
				tt.check(t, err)
				return
			}
			if err != nil || got.UPN != tt.upn || got.DN != tt.dn || got.Cached {
				t.Fatalf("Map() = %+v, %v; want %s / %s", got, err, tt.upn, tt.dn)
			}
		})
	}
	if m.BaseDN() != testBase {
		t.Errorf("BaseDN() = %q, want the rootDSE's defaultNamingContext %q", m.BaseDN(), testBase)
	}
}

func TestMapSendsEscapedFilter(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	m := newMapper(t, l.config(nil))
	if _, err := m.Map(t.Context(), l.bob.Raw); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("(&(objectClass=757365722)(userCertificate=%x))", l.bob.Raw)
	want = strings.Replace(want, "757365722", fmt.Sprintf("%x", "user"), 1)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case f := <-l.srv.Filters():
			if f == want {
				return
			}
		case <-deadline:
			t.Fatalf("the server never received %s", want)
		}
	}
}

func TestBaseDNPrecedence(t *testing.T) {
	const forest, child, other = "DC=lab,DC=test", "DC=child,DC=lab,DC=test", "OU=Phones,DC=lab,DC=test"
	tests := []struct {
		name   string
		url    string // path appended to the fake's URL, or a full URL to redirect
		basedn string
		want   string
	}{
		{name: "URL path wins over basedn", url: "/" + other, basedn: child, want: other},
		{name: "basedn when the URL has none", url: "", basedn: other, want: other},
		{name: "rootDSE defaultNamingContext on 389", url: "", want: child},
		{name: "rootDSE forest root on GC 3268", url: "ldap://gc.lab.test:3268", want: forest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t, ldaptest.Options{RootDSE: map[string]string{"defaultNamingContext": child, "rootDomainNamingContext": forest}})
			l.srv.Add(ldaptest.User("CN=Phone,"+other, "phone", "phone@lab.test"), ldaptest.User("CN=Kid,CN=Users,"+child, "kid", "kid@child.lab.test"))
			cfg := l.config(nil)
			cfg.BaseDN = tt.basedn
			if strings.HasPrefix(tt.url, "ldap") {
				cfg.URL, cfg.DialContext = tt.url, redirect(l.srv.Addr())
			} else {
				cfg.URL = l.srv.URL(tt.url)
			}
			m := newMapper(t, cfg)
			_, err := m.Map(t.Context(), l.unpublished.Raw)
			var nf *NotFoundError
			if !errors.As(err, &nf) || nf.BaseDN != tt.want {
				t.Fatalf("Map() err = %v; want not found under %s", err, tt.want)
			}
			if m.BaseDN() != tt.want {
				t.Errorf("BaseDN() = %q, want %q", m.BaseDN(), tt.want)
			}
		})
	}
}

func TestBadBaseDN(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	cfg := l.config(nil)
	cfg.BaseDN = "DC=nowhere,DC=test"
	m := newMapper(t, cfg)
	_, err := m.Map(t.Context(), l.bob.Raw)
	var de *DirectoryError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "does not exist") || errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want a DirectoryError about the base DN", err)
	}
}

func TestBindRefused(t *testing.T) {
	tests := []struct {
		name     string
		opts     ldaptest.Options
		password string
		hint     string
		code     uint16
	}{
		{name: "wrong password", password: "wrong", hint: "check cert.mapping.ldap.user is a DN and the KCD service account password", code: 49},
		{name: "simple bind without TLS", opts: ldaptest.Options{RequireTLS: true}, password: testPassword, hint: "use ldaps:// or StartTLS", code: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t, tt.opts)
			cfg := l.config(nil)
			cfg.Password = secret.New(tt.password)
			m := newMapper(t, cfg)
			_, err := m.Map(t.Context(), l.bob.Raw)
			var be *BindError
			if !errors.As(err, &be) || be.Code != tt.code || !strings.Contains(err.Error(), tt.hint) {
				t.Fatalf("err = %v, want BindError code %d with hint %q", err, tt.code, tt.hint)
			}
			if strings.Contains(err.Error(), tt.password) {
				t.Fatalf("the error shows the password: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "certmap: ") {
				t.Errorf("error lacks the package prefix: %v", err)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	serverTLS, roots := ldaptest.TLS(t, "127.0.0.1", "dc1.lab.test")
	_, otherRoots := ldaptest.TLS(t, "127.0.0.1")
	tests := []struct {
		name     string
		implicit bool
		startTLS bool
		require  bool
		url      string // host-name URL redirected to the fake; empty for the fake's own
		roots    bool   // trust the right CA
		wantErr  string
	}{
		{name: "ldaps with CA verified", implicit: true, roots: true},
		{name: "ldaps with host name verified", implicit: true, roots: true, url: "ldaps://dc1.lab.test:636"},
		{name: "ldaps on GC 3269", implicit: true, roots: true, url: "ldaps://dc1.lab.test:3269"},
		{name: "StartTLS where the directory requires TLS", startTLS: true, require: true, roots: true},
		{name: "ldaps with an unknown CA", implicit: true, wantErr: "not signed by a configured CA"},
		{name: "StartTLS with an unknown CA", startTLS: true, wantErr: "not signed by a configured CA"},
		{name: "ldaps with a name the certificate lacks", implicit: true, roots: true, url: "ldaps://dc2.lab.test:636", wantErr: "does not name the URL's host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t, ldaptest.Options{TLS: serverTLS, Implicit: tt.implicit, RequireTLS: tt.require})
			cfg := l.config(nil)
			cfg.StartTLS = tt.startTLS
			cfg.RootCAs = otherRoots
			if tt.roots {
				cfg.RootCAs = roots
			}
			if tt.url != "" {
				cfg.URL, cfg.DialContext = tt.url, redirect(l.srv.Addr())
			}
			m := newMapper(t, cfg)
			got, err := m.Map(t.Context(), l.bob.Raw)
			if tt.wantErr != "" {
				var de *DirectoryError
				if !errors.As(err, &de) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Map() = %+v, %v; want DirectoryError with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.UPN != "bob.smith@lab.test" {
				t.Fatalf("Map() = %+v, %v", got, err)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	base := Config{URL: "ldaps://dc1.lab.test", BindDN: testBindDN, Password: secret.New("x")}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"bad URL", func(c *Config) { c.URL = "http://x" }, "cert.mapping.ldap.url"},
		{"no bind user", func(c *Config) { c.BindDN = "" }, "cert.mapping.ldap.user is empty"},
		{"bind user not a DN", func(c *Config) { c.BindDN = "svc_seg" }, "is not a distinguished name"},
		{"no password", func(c *Config) { c.Password = secret.Secret{} }, "password is empty"},
		{"bad basedn", func(c *Config) { c.BaseDN = "lab.test" }, "cert.mapping.ldap.basedn"},
		{"StartTLS on ldaps", func(c *Config) { c.StartTLS = true }, "already uses TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.mutate(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "certmap: ") {
				t.Fatalf("New() error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCacheAndHooks(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	c := newClock()
	cfg := l.config(c)
	cfg.CacheTTL, cfg.NegativeTTL = 10*time.Minute, time.Minute
	var mu sync.Mutex
	lookups := map[Outcome]int{}
	var hits, misses atomic.Int64
	cfg.Hooks = Hooks{
		Lookup: func(o Outcome, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			lookups[o]++
		},
		Cache: func(hit bool) {
			if hit {
				hits.Add(1)
			} else {
				misses.Add(1)
			}
		},
	}
	m := newMapper(t, cfg)
	ctx := t.Context()
	mustMap := func(der []byte, wantCached bool) {
		t.Helper()
		got, err := m.Map(ctx, der)
		if err != nil || got.UPN != "bob.smith@lab.test" || got.Cached != wantCached {
			t.Fatalf("Map() = %+v, %v; want bob, cached %v", got, err, wantCached)
		}
	}
	mustMap(l.bob.Raw, false)
	searches := l.srv.Searches()
	mustMap(l.bob.Raw, true)
	if l.srv.Searches() != searches {
		t.Fatal("a cached mapping went to the directory")
	}
	if _, err := m.Map(ctx, l.unpublished.Raw); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	// Within the negative TTL the miss is cached...
	c.Advance(59 * time.Second)
	searches = l.srv.Searches()
	if _, err := m.Map(ctx, l.unpublished.Raw); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if l.srv.Searches() != searches {
		t.Fatal("a cached miss went to the directory")
	}
	// ...and once it has passed, a certificate published since is found.
	l.srv.Add(ldaptest.User("CN=Eve,CN=Users,"+testBase, "eve", "eve@lab.test", l.unpublished.Raw))
	c.Advance(2 * time.Second)
	if got, err := m.Map(ctx, l.unpublished.Raw); err != nil || got.UPN != "eve@lab.test" || got.Cached {
		t.Fatalf("after the negative TTL Map() = %+v, %v; want eve from the directory", got, err)
	}
	// The mapping itself lives for the longer TTL.
	c.Advance(8 * time.Minute) // 9m01s after bob was cached
	mustMap(l.bob.Raw, true)
	c.Advance(time.Minute)
	mustMap(l.bob.Raw, false)

	mu.Lock()
	defer mu.Unlock()
	if lookups[OutcomeMapped] != 3 || lookups[OutcomeNotFound] != 1 {
		t.Errorf("lookup hooks = %v, want 3 mapped and 1 not_found", lookups)
	}
	if hits.Load() != 3 || misses.Load() != 4 {
		t.Errorf("cache hooks: %d hits, %d misses; want 3 and 4", hits.Load(), misses.Load())
	}
}

func TestOutageAndRecovery(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	cfg := l.config(nil)
	cfg.CacheSize = -1
	m := newMapper(t, cfg)
	ctx := t.Context()
	if _, err := m.Map(ctx, l.bob.Raw); err != nil {
		t.Fatal(err)
	}
	if err := m.Check(ctx); err != nil {
		t.Fatalf("Check() = %v", err)
	}
	l.srv.Stop()
	_, err := m.Map(ctx, l.bob.Raw)
	var de *DirectoryError
	if !errors.As(err, &de) || errors.Is(err, ErrNotFound) {
		t.Fatalf("with the directory down Map() err = %v, want a DirectoryError", err)
	}
	if !strings.Contains(err.Error(), "check cert.mapping.ldap.url and that the directory is up") {
		t.Errorf("error %q lacks the hint", err)
	}
	if err := m.Check(ctx); err == nil {
		t.Fatal("Check() = nil with the directory down")
	}
	if err := l.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	got, err := m.Map(ctx, l.bob.Raw)
	if err != nil || got.UPN != "bob.smith@lab.test" {
		t.Fatalf("after the restart Map() = %+v, %v", got, err)
	}
}

func TestReconnectAfterIdleConnectionDropped(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	cfg := l.config(nil)
	cfg.CacheSize = -1
	m := newMapper(t, cfg)
	if _, err := m.Map(t.Context(), l.bob.Raw); err != nil {
		t.Fatal(err)
	}
	// The directory restarts between two lookups: the pooled connection is
	// dead, and the next lookup must reconnect rather than fail.
	l.srv.Stop()
	if err := l.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	dials := l.srv.Dials()
	if got, err := m.Map(t.Context(), l.bob.Raw); err != nil || got.UPN != "bob.smith@lab.test" {
		t.Fatalf("Map() = %+v, %v; want a transparent reconnect", got, err)
	}
	if l.srv.Dials() != dials+1 {
		t.Errorf("dials = %d, want one new connection", l.srv.Dials()-dials)
	}
}

func TestTimeout(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	cfg := l.config(nil)
	// The lookup as a whole is bounded by DialTimeout+OpTimeout: a long
	// DialTimeout leaves OpTimeout, on the search, as what ends it.
	cfg.DialTimeout, cfg.OpTimeout = time.Minute, 200*time.Millisecond
	m := newMapper(t, cfg)
	l.srv.SetHang(true)
	_, err := m.Map(t.Context(), l.bob.Raw)
	var de *DirectoryError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "did not answer in time") {
		t.Fatalf("err = %v, want a DirectoryError saying the directory did not answer in time", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v: the lookup's overall bound ended the search, not OpTimeout", err)
	}
	// The mapper answers again once the directory does. 200 ms per search
	// is short for a loaded machine, so a timeout may still come: retry
	// until a deadline, and fail on any other error.
	l.srv.SetHang(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := m.Map(t.Context(), l.bob.Raw)
		if err == nil && got.UPN == "bob.smith@lab.test" {
			return
		}
		if !errors.As(err, &de) || !strings.Contains(err.Error(), "did not answer in time") || time.Now().After(deadline) {
			t.Fatalf("after the hang Map() = %+v, %v", got, err)
		}
	}
}

func TestCallerCancel(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	m := newMapper(t, l.config(nil))
	l.srv.SetHang(true)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := m.Map(ctx, l.bob.Raw)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Map did not return after its context was cancelled")
	}
}

func TestBoundedPoolAndSingleFlight(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	certs := make([][]byte, 16)
	for i := range certs {
		c := mintClient(t, fmt.Sprintf("u%d", i))
		certs[i] = c.Raw
		l.srv.Add(ldaptest.User(fmt.Sprintf("CN=U%d,CN=Users,%s", i, testBase), fmt.Sprintf("u%d", i), fmt.Sprintf("u%d@lab.test", i), c.Raw))
	}
	cfg := l.config(nil)
	cfg.PoolSize = 2
	m := newMapper(t, cfg)
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(certs))
	for range 4 { // four callers per certificate at once
		for i, der := range certs {
			wg.Go(func() {
				got, err := m.Map(t.Context(), der)
				if err == nil && got.UPN != fmt.Sprintf("u%d@lab.test", i) {
					err = fmt.Errorf("cert %d mapped to %s", i, got.UPN)
				}
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if d := l.srv.Dials(); d > 2 {
		t.Errorf("%d connections opened with PoolSize 2", d)
	}
	// Every caller has its answer, so the server has queued every filter it
	// received. Each certificate is searched once, however its four callers
	// interleave with its flight (a late caller must find the answer, not
	// start a search), and the rootDSE read at most once per connection
	// opened before the base was known.
	searches := map[string]int{}
	for len(l.srv.Filters()) > 0 {
		searches[<-l.srv.Filters()]++
	}
	for i, der := range certs {
		f := fmt.Sprintf("(&(objectClass=%x)(userCertificate=%x))", "user", der)
		if n := searches[f]; n != 1 {
			t.Errorf("certificate %d searched %d times by 4 concurrent callers, want once", i, n)
		}
		delete(searches, f)
	}
	if n := searches["(objectClass=*)"]; n < 1 || n > 2 || len(searches) != 1 {
		t.Errorf("other searches: %v; want the rootDSE read once or twice (PoolSize 2)", searches)
	}
}

func TestIdleTimeoutClosesOldConnections(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	c := newClock()
	cfg := l.config(c)
	cfg.IdleTimeout, cfg.CacheSize = time.Minute, -1
	m := newMapper(t, cfg)
	if _, err := m.Map(t.Context(), l.bob.Raw); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Map(t.Context(), l.bob.Raw); err != nil {
		t.Fatal(err)
	}
	if d := l.srv.Dials(); d != 1 {
		t.Fatalf("%d dials for two quick lookups, want 1", d)
	}
	c.Advance(2 * time.Minute)
	if _, err := m.Map(t.Context(), l.bob.Raw); err != nil {
		t.Fatal(err)
	}
	if d := l.srv.Dials(); d != 2 {
		t.Fatalf("%d dials after the idle timeout, want 2", d)
	}
	if n := m.pool.idleCount(); n != 1 {
		t.Errorf("idle connections = %d, want 1", n)
	}
}

func BenchmarkMapCached(b *testing.B) {
	l := newLab(b, ldaptest.Options{})
	m := newMapper(b, l.config(nil))
	ctx := context.Background()
	if _, err := m.Map(ctx, l.bob.Raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if got, err := m.Map(ctx, l.bob.Raw); err != nil || !got.Cached {
			b.Fatal(got, err)
		}
	}
}

func BenchmarkMapUncached(b *testing.B) {
	l := newLab(b, ldaptest.Options{})
	cfg := l.config(nil)
	cfg.CacheSize = -1
	m := newMapper(b, cfg)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Map(ctx, l.bob.Raw); err != nil {
			b.Fatal(err)
		}
	}
}

func TestMapUPN(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	m := newMapper(t, l.config(nil))
	tests := []struct {
		upn      string
		wantUPN  string
		wantDN   string
		wantAlt  bool
		notFound bool
	}{
		{upn: "bob.smith@lab.test", wantUPN: "bob.smith@lab.test", wantDN: "CN=Bob Smith,CN=Users," + testBase},
		{upn: "BOB.SMITH@LAB.TEST", wantUPN: "bob.smith@lab.test", wantDN: "CN=Bob Smith,CN=Users," + testBase},
		{upn: "carol.ext@LAB.TEST", wantUPN: "carol@lab.test", wantDN: "CN=Carol,CN=Users," + testBase, wantAlt: true},
		{upn: "nobody@lab.test", notFound: true},
		{upn: "*", notFound: true},
		{upn: "*)(userPrincipalName=*", notFound: true},
		{upn: "x\x00y@lab.test", notFound: true},
	}
	for _, tt := range tests {
		t.Run(tt.upn, func(t *testing.T) {
			got, err := m.MapUPN(t.Context(), tt.upn)
			if tt.notFound {
				var nf *NotFoundError
				if !errors.As(err, &nf) || nf.UPN != tt.upn || !strings.Contains(err.Error(), "altSecurityIdentities") {
					t.Fatalf("MapUPN(%q) = %+v, %v; want NotFoundError", tt.upn, got, err)
				}
				return
			}
			if err != nil || got.UPN != tt.wantUPN || got.DN != tt.wantDN || got.AltSecurityIdentity != tt.wantAlt {
				t.Fatalf("MapUPN(%q) = %+v, %v", tt.upn, got, err)
			}
		})
	}
}

func TestCancelledCallerDoesNotFailOthers(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	m := newMapper(t, l.config(nil))
	if err := m.Check(t.Context()); err != nil { // resolve the base first
		t.Fatal(err)
	}
	l.srv.SetDelay(300 * time.Millisecond)
	first, cancelFirst := context.WithCancel(t.Context())
	firstErr := make(chan error, 1)
	go func() {
		_, err := m.Map(first, l.bob.Raw)
		firstErr <- err
	}()
	// Wait until the first caller's lookup is in flight, then join it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.flightMu.Lock()
		n := len(m.flights)
		m.flightMu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first lookup never started")
		}
		time.Sleep(time.Millisecond)
	}
	second := make(chan error, 1)
	go func() {
		got, err := m.Map(t.Context(), l.bob.Raw)
		if err == nil && got.UPN != "bob.smith@lab.test" {
			err = fmt.Errorf("mapped to %s", got.UPN)
		}
		second <- err
	}()
	cancelFirst()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v, want context.Canceled", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("second caller failed with the first one's cancellation: %v", err)
	}
}

func TestCloseCancelsInFlight(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	cfg := l.config(nil)
	cfg.OpTimeout = time.Minute
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l.srv.SetHang(true)
	done := make(chan error, 1)
	go func() {
		_, err := m.Map(t.Context(), l.bob.Raw)
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for l.srv.Searches() == 0 && l.srv.Binds() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the lookup never reached the server")
		}
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { _ = m.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not cancel the hung lookup")
	}
	if err := <-done; err == nil {
		t.Fatal("the hung lookup succeeded")
	}
	if _, err := m.Map(t.Context(), l.bob.Raw); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Map after Close = %v, want closed", err)
	}
}
