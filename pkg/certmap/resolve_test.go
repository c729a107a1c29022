package certmap

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
	"github.com/segmesh/segmesh/pkg/upn"
)

func testRealms(tb testing.TB) *upn.Realms {
	tb.Helper()
	r, err := upn.NewRealms([]string{"LAB.TEST"}, map[string]string{"example.com": "LAB.TEST"})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// fakeLookup answers Map from a table keyed by DER; unknown certificates
// are not found. down makes every call fail as an unreachable directory.
type fakeLookup struct {
	byDER map[string]answer
	byUPN map[string]answer
	down  bool
	calls int
}

func (f *fakeLookup) MapUPN(_ context.Context, upn string) (Mapping, error) {
	if f.down {
		return Mapping{}, &DirectoryError{Op: "dial", Endpoint: "ldaps://dc1.lab.test:636", Err: errors.New("connection refused")}
	}
	if a, ok := f.byUPN[strings.ToLower(upn)]; ok {
		return a.mapping, a.err
	}
	return Mapping{}, &NotFoundError{BaseDN: testBase, UPN: upn}
}

func (f *fakeLookup) Map(_ context.Context, der []byte) (Mapping, error) {
	f.calls++
	if f.down {
		return Mapping{}, &DirectoryError{Op: "dial", Endpoint: "ldaps://dc1.lab.test:636", Err: errors.New("connection refused"), Hint: "check cert.mapping.ldap.url and that the directory is up"}
	}
	if a, ok := f.byDER[string(der)]; ok {
		return a.mapping, a.err
	}
	return Mapping{}, &NotFoundError{BaseDN: testBase}
}

func TestResolve(t *testing.T) {
	bob := mintClient(t, "bob")
	mallory := mintClient(t, "mallory", "alice@lab.test")
	alice := mintClient(t, "alice", "alice@lab.test")
	carol := mintClient(t, "carol", "carol@example.com")
	stranger := mintClient(t, "dave", "dave@other.test")
	twoUPNs := mintClient(t, "two", "a@lab.test", "b@lab.test")
	foreign := mintClient(t, "foreign")
	dup := mintClient(t, "dup", "dup@lab.test")
	noUPNUser := mintClient(t, "nupn", "nupn@lab.test")
	carolExt := mintClient(t, "carol", "carol.ext@LAB.TEST")
	partner := mintClient(t, "pat", "pat@partner.example")
	shared := mintClient(t, "shared", "shared@lab.test")
	byUPN := map[string]answer{
		"alice@lab.test":      {mapping: Mapping{UPN: "alice@lab.test", DN: "CN=Alice,CN=Users," + testBase}},
		"carol.ext@lab.test":  {mapping: Mapping{UPN: "carol@lab.test", DN: "CN=Carol,CN=Users," + testBase, AltSecurityIdentity: true}},
		"pat@partner.example": {mapping: Mapping{UPN: "pat@lab.test", DN: "CN=Pat,CN=Users," + testBase, AltSecurityIdentity: true}},
		"shared@lab.test":     {err: &AmbiguousError{DNs: []string{"CN=S1," + testBase, "CN=S2," + testBase}, UPN: "shared@lab.test"}},
	}
	directory := map[string]answer{
		string(bob.Raw):       {mapping: Mapping{UPN: "bob.smith@lab.test", DN: "CN=Bob Smith,CN=Users," + testBase}},
		string(mallory.Raw):   {mapping: Mapping{UPN: "mallory@lab.test", DN: "CN=Mallory,CN=Users," + testBase}},
		string(foreign.Raw):   {mapping: Mapping{UPN: "x@elsewhere.test", DN: "CN=X,CN=Users," + testBase}},
		string(dup.Raw):       {err: &AmbiguousError{DNs: []string{"CN=A," + testBase, "CN=B," + testBase}}},
		string(noUPNUser.Raw): {err: &NoUPNError{DN: "CN=No UPN," + testBase}},
	}
	type want struct {
		upn, realm, dn string
		source         Source
		refused        string // substring of the refusal; empty means success
		unavailable    bool
	}
	tests := []struct {
		name     string
		mapping  bool
		down     bool
		fallback bool
		cert     []byte
		want     want
	}{
		{name: "mapping finds bob", mapping: true, cert: bob.Raw, want: want{upn: "bob.smith@lab.test", realm: "LAB.TEST", dn: "CN=Bob Smith,CN=Users," + testBase, source: SourceLDAP}},
		{name: "mapping beats the SAN for mallory", mapping: true, cert: mallory.Raw, want: want{upn: "mallory@lab.test", realm: "LAB.TEST", dn: "CN=Mallory,CN=Users," + testBase, source: SourceLDAP}},
		{name: "miss falls back to the SAN", mapping: true, cert: alice.Raw, want: want{upn: "alice@lab.test", realm: "LAB.TEST", dn: "CN=Alice,CN=Users," + testBase, source: SourceSAN}},
		{name: "SAN UPN in carol's altSecurityIdentities", mapping: true, cert: carolExt.Raw, want: want{upn: "carol@lab.test", realm: "LAB.TEST", dn: "CN=Carol,CN=Users," + testBase, source: SourceAltSecurityIdentities}},
		{name: "foreign SAN suffix translated by altSecurityIdentities", mapping: true, cert: partner.Raw, want: want{upn: "pat@lab.test", realm: "LAB.TEST", dn: "CN=Pat,CN=Users," + testBase, source: SourceAltSecurityIdentities}},
		{name: "foreign SAN suffix with mapping off goes to the primary realm's KDC", cert: partner.Raw, want: want{upn: "pat@partner.example", realm: "LAB.TEST", source: SourceSAN}},
		{name: "altSecurityIdentities on two users", mapping: true, cert: shared.Raw, want: want{refused: "CN=S2," + testBase}},
		{name: "mapping off leaves carol's SAN UPN alone", cert: carolExt.Raw, want: want{upn: "carol.ext@LAB.TEST", realm: "LAB.TEST", source: SourceSAN}},
		{name: "mapped suffix via the suffix map", mapping: true, cert: carol.Raw, want: want{upn: "carol@example.com", realm: "LAB.TEST", source: SourceSAN}},
		{name: "mapping off uses the SAN even for mallory", cert: mallory.Raw, want: want{upn: "alice@lab.test", realm: "LAB.TEST", source: SourceSAN}},
		{name: "mapping off and no UPN", cert: bob.Raw, want: want{refused: "enable cert.mapping.enabled"}},
		{name: "miss and no UPN", mapping: true, cert: mintClient(t, "nobody").Raw, want: want{refused: "publish the certificate to the user's userCertificate"}},
		{name: "SAN UPN in no configured domain: the primary realm's KDC resolves it", mapping: true, cert: stranger.Raw, want: want{upn: "dave@other.test", realm: "LAB.TEST", source: SourceSAN}},
		{name: "two UPNs in the SAN", cert: twoUPNs.Raw, want: want{refused: "a@lab.test, b@lab.test"}},
		{name: "mapped user's UPN on an alternative suffix is kept, not replaced by the SAN", mapping: true, cert: foreign.Raw, want: want{upn: "x@elsewhere.test", realm: "LAB.TEST", dn: "CN=X,CN=Users," + testBase, source: SourceLDAP}},
		{name: "several users hold it", mapping: true, cert: dup.Raw, want: want{refused: "CN=B," + testBase}},
		{name: "mapped user has no UPN", mapping: true, cert: noUPNUser.Raw, want: want{refused: "set its userPrincipalName"}},
		{name: "directory down refuses mallory", mapping: true, down: true, cert: mallory.Raw, want: want{refused: "could not be asked", unavailable: true}},
		{name: "directory down with fallback allowed", mapping: true, down: true, fallback: true, cert: alice.Raw, want: want{upn: "alice@lab.test", realm: "LAB.TEST", source: SourceSAN}},
		{name: "directory down, fallback allowed, no UPN", mapping: true, down: true, fallback: true, cert: bob.Raw, want: want{refused: "publish", unavailable: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ResolverConfig{Realms: testRealms(t), FallbackWhenUnavailable: tt.fallback}
			fake := &fakeLookup{byDER: directory, byUPN: byUPN, down: tt.down}
			if tt.mapping {
				cfg.Mapper = fake
			}
			var logs bytes.Buffer
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			r, err := NewResolver(cfg)
			if err != nil {
				t.Fatal(err)
			}
			cert := mustParse(t, tt.cert)
			id, err := r.Resolve(t.Context(), cert)
			if tt.want.refused != "" {
				var re *RefusedError
				if !errors.As(err, &re) || !strings.Contains(err.Error(), tt.want.refused) || re.Unavailable != tt.want.unavailable {
					t.Fatalf("Resolve() = %+v, %v; want refusal containing %q (unavailable %v)", id, err, tt.want.refused, tt.want.unavailable)
				}
				if !strings.Contains(logs.String(), "certificate refused") {
					t.Errorf("the refusal was not logged: %s", logs.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve() error = %v", err)
			}
			if id.UPN.String() != tt.want.upn || id.UPN.Realm != tt.want.realm || id.DN != tt.want.dn || id.Source != tt.want.source {
				t.Fatalf("Resolve() = %+v (%s); want %+v", id, id.UPN, tt.want)
			}
			if tt.mapping && fake.calls != 1 {
				t.Errorf("mapper called %d times, want 1", fake.calls)
			}
		})
	}
}

func TestResolveAgainstFakeDirectory(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	r, err := NewResolver(ResolverConfig{Mapper: newMapper(t, l.config(nil)), Realms: testRealms(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cert   []byte
		upn    string
		source Source
	}{
		{"bob", l.bob.Raw, "bob.smith@lab.test", SourceLDAP},
		{"mallory", l.mallory.Raw, "mallory@lab.test", SourceLDAP},
		{"unpublished falls back", l.unpublished.Raw, "eve@lab.test", SourceSAN},
		{"carol through altSecurityIdentities", l.carol.Raw, "carol@lab.test", SourceAltSecurityIdentities},
		{"alice's own certificate", l.alice.Raw, "alice@lab.test", SourceLDAP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := r.Resolve(t.Context(), mustParse(t, tc.cert))
			if err != nil || id.UPN.String() != tc.upn || id.Source != tc.source {
				t.Fatalf("Resolve() = %+v, %v; want %s from %s", id, err, tc.upn, tc.source)
			}
		})
	}
}

func TestSourceString(t *testing.T) {
	for s, want := range map[Source]string{SourceLDAP: "ldap_mapping", SourceSAN: "certificate_san", SourceAltSecurityIdentities: "alt_security_identities", 0: "source(0)"} {
		if s.String() != want {
			t.Errorf("Source(%d).String() = %q, want %q", int(s), s.String(), want)
		}
	}
}

func mustParse(tb testing.TB, der []byte) *x509.Certificate {
	tb.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// BenchmarkResolveCached is the per-request cost on the edge's path once
// the directory answer is cached: SHA-256 of the certificate, the cache,
// realm matching.
func BenchmarkResolveCached(b *testing.B) {
	l := newLab(b, ldaptest.Options{})
	r, err := NewResolver(ResolverConfig{Mapper: newMapper(b, l.config(nil)), Realms: testRealms(b)})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
	}{{"ldap mapping", l.bob}, {"SAN fallback", l.unpublished}} {
		b.Run(tc.name, func(b *testing.B) {
			if _, err := r.Resolve(context.Background(), tc.cert); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if id, err := r.Resolve(context.Background(), tc.cert); err != nil || !id.Cached {
					b.Fatal(id, err)
				}
			}
		})
	}
}

func TestResolveCallerGone(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	var logs bytes.Buffer
	r, err := NewResolver(ResolverConfig{Mapper: newMapper(t, l.config(nil)), Realms: testRealms(t), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	l.srv.SetHang(true)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = r.Resolve(ctx, l.mallory)
	var re *RefusedError
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &re) {
		t.Fatalf("Resolve() with the caller gone = %v, want the context's error and no refusal", err)
	}
	if strings.Contains(logs.String(), "refused") {
		t.Errorf("a caller leaving was logged as a refusal: %s", logs.String())
	}
}
