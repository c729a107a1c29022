//go:build lab

package certmap

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/secret"
	"github.com/segmesh/segmesh/pkg/upn"
)

// The lab (deploy/lab) is a Samba AD for LAB.TEST: bob's certificate carries
// no UPN and is published on bob (UPN bob.smith@lab.test); mallory's names
// alice in its SAN but is published on mallory; alice's is published
// nowhere; carol's names carol.ext@LAB.TEST, which is in carol's
// altSecurityIdentities.

func labCert(tb testing.TB, e *labenv.Env, user string) *x509.Certificate {
	tb.Helper()
	return testpki.CertFile(tb, e.User(user).Cert)
}

func labRoots(tb testing.TB, e *labenv.Env) *x509.CertPool {
	tb.Helper()
	b, err := os.ReadFile(e.LDAPCA)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		tb.Fatalf("%s holds no certificate", e.LDAPCA)
	}
	return pool
}

func labConfig(tb testing.TB, e *labenv.Env, url string) Config {
	tb.Helper()
	return Config{
		URL: url, BindDN: e.SvcDN, Password: secret.New(e.SvcPassword(tb)),
		RootCAs: labRoots(tb, e), DialTimeout: 3 * time.Second, OpTimeout: 3 * time.Second,
	}
}

func TestLabMapping(t *testing.T) {
	e := labenv.Up(t)
	bob, mallory, alice := labCert(t, e, "bob"), labCert(t, e, "mallory"), labCert(t, e, "alice")
	endpoints := []struct {
		name     string
		url      string
		startTLS bool
		base     string
	}{
		{name: "ldap 389", url: e.LDAPURL},
		{name: "ldap 389 StartTLS", url: e.LDAPURL, startTLS: true},
		{name: "ldaps 636 with CA verification", url: e.LDAPSURL},
		{name: "GC 3268", url: e.GCURL},
		{name: "GC over TLS 3269", url: e.GCSURL},
		{name: "base DN in the URL", url: e.LDAPSURL + "/CN=Users," + e.BaseDN, base: "CN=Users," + e.BaseDN},
	}
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			cfg := labConfig(t, e, ep.url)
			cfg.StartTLS = ep.startTLS
			m := newMapper(t, cfg)
			ctx := t.Context()
			got, err := m.Map(ctx, bob.Raw)
			if err != nil || !strings.EqualFold(got.UPN, "bob.smith@lab.test") || !strings.Contains(strings.ToLower(got.DN), "cn=bob") {
				t.Fatalf("bob: Map() = %+v, %v; want bob.smith@lab.test", got, err)
			}
			got, err = m.Map(ctx, mallory.Raw)
			if err != nil || !strings.EqualFold(got.UPN, "mallory@lab.test") {
				t.Fatalf("mallory: Map() = %+v, %v; want mallory@lab.test, never alice", got, err)
			}
			if _, err := m.Map(ctx, alice.Raw); !errors.Is(err, ErrNotFound) {
				t.Fatalf("alice (unpublished): Map() err = %v, want ErrNotFound", err)
			}
			want := ep.base
			if want == "" {
				want = e.BaseDN
			}
			if !strings.EqualFold(m.BaseDN(), want) {
				t.Errorf("BaseDN() = %q, want %q", m.BaseDN(), want)
			}
			if err := m.Check(ctx); err != nil {
				t.Errorf("Check() = %v", err)
			}
		})
	}
}

func TestLabResolver(t *testing.T) {
	e := labenv.Up(t)
	realms, err := upn.NewRealms([]string{e.Realm}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewResolver(ResolverConfig{Mapper: newMapper(t, labConfig(t, e, e.LDAPSURL)), Realms: realms})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user   string
		upn    string
		source Source
	}{
		{"bob", "bob.smith@lab.test", SourceLDAP},
		{"mallory", "mallory@lab.test", SourceLDAP},
		{"alice", "alice@lab.test", SourceSAN},
		{"carol", "carol@lab.test", SourceAltSecurityIdentities},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			id, err := r.Resolve(t.Context(), labCert(t, e, tt.user))
			if err != nil || !strings.EqualFold(id.UPN.String(), tt.upn) || id.Source != tt.source || id.UPN.Realm != "LAB.TEST" {
				t.Fatalf("Resolve(%s) = %+v, %v; want %s from %s", tt.user, id, err, tt.upn, tt.source)
			}
		})
	}
}

func TestLabCAVerification(t *testing.T) {
	e := labenv.Up(t)
	cfg := labConfig(t, e, e.LDAPSURL)
	cfg.RootCAs = x509.NewCertPool() // trusts nothing
	_, err := newMapper(t, cfg).Map(t.Context(), labCert(t, e, "bob").Raw)
	var de *DirectoryError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "not signed by a configured CA") {
		t.Fatalf("LDAPS without the DC's CA: err = %v, want a DirectoryError naming the CA", err)
	}
}

func TestLabBindRefused(t *testing.T) {
	e := labenv.Up(t)
	cfg := labConfig(t, e, e.LDAPSURL)
	cfg.Password = secret.New("not-the-password")
	_, err := newMapper(t, cfg).Map(t.Context(), labCert(t, e, "bob").Raw)
	var be *BindError
	if !errors.As(err, &be) || be.Code != 49 || !strings.Contains(err.Error(), "KCD service account password") {
		t.Fatalf("wrong password: err = %v, want BindError 49 with the hint", err)
	}
}

func TestLabOutageAndRecovery(t *testing.T) {
	e := labenv.Up(t)
	realms, err := upn.NewRealms([]string{e.Realm}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := labConfig(t, e, e.LDAPSURL)
	cfg.CacheSize = -1
	m := newMapper(t, cfg)
	r, err := NewResolver(ResolverConfig{Mapper: m, Realms: realms})
	if err != nil {
		t.Fatal(err)
	}
	mallory := labCert(t, e, "mallory")
	if id, err := r.Resolve(t.Context(), mallory); err != nil || id.UPN.User != "mallory" {
		t.Fatalf("before the outage: %+v, %v", id, err)
	}
	e.Fault(t, "ldap", true)
	_, err = r.Resolve(t.Context(), mallory)
	var re *RefusedError
	if !errors.As(err, &re) || !re.Unavailable {
		t.Fatalf("during the outage: err = %v, want an Unavailable refusal (never alice)", err)
	}
	e.Fault(t, "ldap", false)
	deadline := time.Now().Add(20 * time.Second)
	for {
		id, err := r.Resolve(t.Context(), mallory)
		if err == nil && id.UPN.User == "mallory" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after the outage: %+v, %v", id, err)
		}
		time.Sleep(100 * time.Millisecond) // poll to the deadline
	}
}

// BenchmarkLabMapUncached measures one directory lookup (pooled, bound
// connection; the search itself) per endpoint.
func BenchmarkLabMapUncached(b *testing.B) {
	e := labenv.Up(b)
	der := labCert(b, e, "bob").Raw
	for _, ep := range []struct{ name, url string }{
		{"ldap389", e.LDAPURL}, {"ldaps636", e.LDAPSURL}, {"gc3268", e.GCURL}, {"gcs3269", e.GCSURL}, {"direct389", e.LDAPDirectURL},
	} {
		b.Run(ep.name, func(b *testing.B) {
			cfg := labConfig(b, e, ep.url)
			cfg.CacheSize = -1
			m := newMapper(b, cfg)
			ctx := context.Background()
			for b.Loop() {
				if _, err := m.Map(ctx, der); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLabMapCached(b *testing.B) {
	e := labenv.Up(b)
	m := newMapper(b, labConfig(b, e, e.GCSURL))
	der := labCert(b, e, "bob").Raw
	ctx := context.Background()
	if _, err := m.Map(ctx, der); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Map(ctx, der); err != nil {
			b.Fatal(err)
		}
	}
}
