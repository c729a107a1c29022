package certmap

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
	"github.com/segmesh/segmesh/pkg/secret"
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

// mintClient returns a self-signed client certificate for cn carrying the
// given SAN UPNs.
func mintClient(tb testing.TB, cn string, upns ...string) *x509.Certificate {
	tb.Helper()
	return testpki.SelfSigned(tb, cn, testpki.UPN(upns...)).Cert
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
	aliceEntry := ldaptest.User("CN=Alice,CN=Users,"+testBase, "alice", "alice@lab.test", l.alice.Raw)
	// alice's cloud address, as the lab has it (login identity tests).
	aliceEntry.Attrs["proxyAddresses"] = [][]byte{[]byte("SMTP:alice@lab.test"), []byte("smtp:alice.cloud@example.com")}
	l.srv.Add(
		ldaptest.User("CN=svc_seg,CN=Users,"+testBase, "svc_seg", "svc_seg@lab.test"),
		aliceEntry,
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

// mintClientWith returns a self-signed certificate named device, with no
// extended key usage, carrying the given extensions.
func mintClientWith(tb testing.TB, exts ...pkix.Extension) *x509.Certificate {
	tb.Helper()
	return testpki.SelfSigned(tb, "device", testpki.Serial(big.NewInt(7)), testpki.EKU(), testpki.Extension(exts...)).Cert
}
