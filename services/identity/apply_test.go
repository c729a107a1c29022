package identity

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/secret"
)

// fullConfig is config.json's form of testConfig(d) with url.
func fullConfig(url, pw string, edit func(*config.Config)) *config.Config {
	c := config.Default()
	c.KCD.Enabled = true
	c.KCD.ServiceAccountPassword = secret.New(pw)
	c.KCD.Domains = []config.DomainPair{{Domain: "LAB.TEST"}}
	c.Gateway.CertMappingEnabled = true
	c.Gateway.CertMappingLDAPURL = url
	c.Gateway.CertMappingLDAPUser = bindDN
	if edit != nil {
		edit(&c)
	}
	return &c
}

// closedURL is an ldap:// URL nothing listens on.
func closedURL(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "ldap://" + addr
}

// TestPrepareConfigSwitchesTheDirectory moves the mapping between two
// directories that map bob's certificate to different users, and checks
// each reload: a working one is applied (new answers, a new generation, the
// cache flushed), a broken URL or password is refused with the reason and
// the running mapping stays, a new password alone keeps the cache, and the
// security switches stay as the start set them.
func TestPrepareConfigSwitchesTheDirectory(t *testing.T) {
	d1 := newDirectory(t, ldaptest.Options{})
	d2 := ldaptest.New(t, ldaptest.Options{RootDSE: map[string]string{"defaultNamingContext": baseDN}})
	d2.AddBind(bindDN, password)
	d2.Add(ldaptest.User("CN=Robert,CN=Users,"+baseDN, "robert", "robert@lab.test", d1.bob))
	svc, cl, err := startService(t, testConfig(d1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(svc.LiveKeys(), " "), "cert.mapping.ldap.url") {
		t.Fatalf("LiveKeys %v lack the mapping URL", svc.LiveKeys())
	}
	first, err := mapCert(cl, d1.bob)
	if err != nil || first.Upn != "bob.smith@lab.test" || first.MappingGeneration == 0 {
		t.Fatalf("before: %v, %v", first, err)
	}
	steps := []struct {
		name      string
		next      *config.Config
		wantErr   string // empty: applied
		wantUPN   string
		wantCache bool // the answer comes from the cache kept
		sameGen   bool // the generation stays
		before    func()
	}{
		{name: "the other directory", next: fullConfig(d2.URL(""), password, nil), wantUPN: "robert@lab.test"},
		{name: "nothing listens at the new URL", next: fullConfig(closedURL(t), password, nil),
			wantErr: "do not work", wantUPN: "robert@lab.test", wantCache: true, sameGen: true},
		{name: "a wrong password", next: fullConfig(d2.URL(""), "wrong", nil),
			wantErr: "do not work", wantUPN: "robert@lab.test", wantCache: true, sameGen: true},
		{name: "a new password alone keeps the cache", next: fullConfig(d2.URL(""), "N3w-Passw0rd!", nil),
			wantUPN: "robert@lab.test", wantCache: true, sameGen: true, before: func() { d2.AddBind(bindDN, "N3w-Passw0rd!") }},
		{name: "back to the first directory, with the switches turned off in the same save",
			next: fullConfig(d1.srv.URL(""), password, func(c *config.Config) {
				c.Segmesh.Identity.FallbackWhenUnavailable = true
				c.Segmesh.Identity.StrongMapping = false
			}), wantUPN: "bob.smith@lab.test"},
	}
	prevGen := first.MappingGeneration
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		commit, err := svc.PrepareConfig(context.Background(), s.next)
		switch {
		case s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)):
			t.Fatalf("%s: PrepareConfig = %v, want an error with %q", s.name, err, s.wantErr)
		case s.wantErr == "" && err != nil:
			t.Fatalf("%s: PrepareConfig = %v", s.name, err)
		case err == nil:
			commit()
		}
		if err := svc.Ready(context.Background()); err != nil {
			t.Fatalf("%s: not ready: %v", s.name, err)
		}
		got, err := mapCert(cl, d1.bob)
		if err != nil || got.Upn != s.wantUPN || got.Cached != s.wantCache {
			t.Fatalf("%s: MapCertificate = %v, %v; want %s, cached %v", s.name, got, err, s.wantUPN, s.wantCache)
		}
		if (got.MappingGeneration == prevGen) != s.sameGen {
			t.Errorf("%s: generation %d after %d, want same %v", s.name, got.MappingGeneration, prevGen, s.sameGen)
		}
		prevGen = got.MappingGeneration
	}
	svc.mu.Lock()
	applied := svc.applied
	svc.mu.Unlock()
	if applied.FallbackWhenUnavailable {
		t.Error("fallbackWhenUnavailable was turned on by a reload; it takes a restart")
	}
	if err := svc.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestWeakerTransportRefused: a reload never makes the bind go without TLS
// where the running mapping has it.
func TestWeakerTransportRefused(t *testing.T) {
	base := Config{KCDEnabled: true, MappingEnabled: true}
	for _, tc := range []struct {
		name          string
		cur, next     string
		curST, nextST bool
		refused       bool
	}{
		{"ldaps to ldap", "ldaps://dc1:636", "ldap://dc1:389", false, false, true},
		{"StartTLS off", "ldap://dc1:389", "ldap://dc1:389", true, false, true},
		{"ldaps to StartTLS", "ldaps://dc1:636", "ldap://dc2:389", false, true, false},
		{"ldap to ldaps", "ldap://dc1:389", "ldaps://dc2:636", false, false, false},
		{"plain stays plain", "ldap://dc1:389", "ldap://dc2:389", false, false, false},
	} {
		cur, next := base, base
		cur.LDAPURL, cur.StartTLS = tc.cur, tc.curST
		next.LDAPURL, next.StartTLS = tc.next, tc.nextST
		if err := weakerTransport(cur, next); (err != nil) != tc.refused {
			t.Errorf("%s: weakerTransport = %v, want refused %v", tc.name, err, tc.refused)
		}
	}
}
