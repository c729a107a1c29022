package certmap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
	"github.com/segmesh/segmesh/pkg/secret"
	"github.com/segmesh/segmesh/pkg/upn"
)

const (
	testBindDN   = "CN=svc_seg,CN=Users,DC=lab,DC=test"
	testPassword = "Passw0rd-svc"
	testBase     = "DC=lab,DC=test"
)

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// mintClient returns a client certificate for cn carrying the given SAN UPNs.
func mintClient(tb testing.TB, cn string, upns ...string) *x509.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(upns) > 0 {
		ext, err := upn.SANExtension(upns)
		if err != nil {
			tb.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{ext}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}

// lab is the fake directory the mapper tests share: the users of the real
// lab (deploy/lab) with their certificates.
type lab struct {
	srv                             *ldaptest.Server
	alice, bob, mallory, carol, dup *x509.Certificate
	unpublished, noUPNUser          *x509.Certificate
}

func newLab(tb testing.TB, opts ldaptest.Options) *lab {
	tb.Helper()
	if opts.RootDSE == nil {
		opts.RootDSE = map[string]string{"defaultNamingContext": testBase, "rootDomainNamingContext": testBase}
	}
	l := &lab{
		srv:         ldaptest.New(tb, opts),
		alice:       mintClient(tb, "alice", "alice@lab.test"),
		bob:         mintClient(tb, "bob"), // no UPN in the certificate
		mallory:     mintClient(tb, "mallory", "alice@lab.test"),
		carol:       mintClient(tb, "carol", "carol.ext@LAB.TEST"),
		dup:         mintClient(tb, "dup"),
		unpublished: mintClient(tb, "eve", "eve@lab.test"),
		noUPNUser:   mintClient(tb, "nupn"),
	}
	l.srv.AddBind(testBindDN, testPassword)
	carolEntry := ldaptest.User("CN=Carol,CN=Users,"+testBase, "carol", "carol@lab.test")
	carolEntry.Attrs["altSecurityIdentities"] = [][]byte{[]byte("Kerberos:carol.ext@LAB.TEST")}
	l.srv.Add(
		ldaptest.User("CN=svc_seg,CN=Users,"+testBase, "svc_seg", "svc_seg@lab.test"),
		ldaptest.User("CN=Alice,CN=Users,"+testBase, "alice", "alice@lab.test", l.alice.Raw),
		ldaptest.User("CN=Bob Smith,CN=Users,"+testBase, "bob", "bob.smith@lab.test", l.bob.Raw),
		ldaptest.User("CN=Mallory,CN=Users,"+testBase, "mallory", "mallory@lab.test", l.mallory.Raw),
		carolEntry,
		ldaptest.User("CN=Dup One,CN=Users,"+testBase, "dup1", "dup1@lab.test", l.dup.Raw),
		ldaptest.User("CN=Dup Two,CN=Users,"+testBase, "dup2", "dup2@lab.test", l.dup.Raw),
		ldaptest.User("CN=No UPN,CN=Users,"+testBase, "nupn", "", l.noUPNUser.Raw),
	)
	return l
}

// config returns a mapper configuration for the lab's server.
func (l *lab) config(c *clock) Config {
	cfg := Config{
		URL:         l.srv.URL(""),
		BindDN:      testBindDN,
		Password:    secret.New(testPassword),
		DialTimeout: 2 * time.Second,
		OpTimeout:   2 * time.Second,
	}
	if c != nil {
		cfg.Now = c.Now
	}
	return cfg
}

func newMapper(tb testing.TB, cfg Config) *Mapper {
	tb.Helper()
	m, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = m.Close() })
	return m
}

// redirect dials addr whatever address is asked for, so a URL can carry a
// Global Catalog port or a host name while the fake listens on port 0.
func redirect(addr string) func(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
}

// mintClientWith returns a self-signed client certificate with extensions.
func mintClientWith(tb testing.TB, exts ...pkix.Extension) *x509.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(7),
		Subject:         pkix.Name{CommonName: "device"},
		NotBefore:       time.Now().Add(-time.Hour),
		NotAfter:        time.Now().Add(time.Hour),
		ExtraExtensions: exts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}

func sanExt(tb testing.TB, upns ...string) pkix.Extension {
	tb.Helper()
	ext, err := upn.SANExtension(upns)
	if err != nil {
		tb.Fatal(err)
	}
	return ext
}
