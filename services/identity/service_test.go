package identity

import (
	"bytes"
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/secret"
	identityv1 "github.com/segmesh/segmesh/proto/segmesh/identity/v1"
)

const (
	bindDN   = "CN=svc_seg,CN=Users,DC=lab,DC=test"
	password = "Svc-Passw0rd!"
	baseDN   = "DC=lab,DC=test"
)

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

// device mints a self-signed client certificate for cn with the given SAN
// UPNs and returns its DER.
func device(tb testing.TB, cn string, upns ...string) []byte {
	tb.Helper()
	return testpki.SelfSigned(tb, cn, testpki.UPN(upns...)).Cert.Raw
}

// directory is a fake AD holding the lab's users.
type directory struct {
	srv                       *ldaptest.Server
	bob, mallory, eve, nobody []byte
	carol                     []byte
}

func newDirectory(tb testing.TB, opts ldaptest.Options) *directory {
	tb.Helper()
	opts.RootDSE = map[string]string{"defaultNamingContext": baseDN, "rootDomainNamingContext": baseDN}
	d := &directory{
		srv:     ldaptest.New(tb, opts),
		bob:     device(tb, "bob"),
		mallory: device(tb, "mallory", "alice@lab.test"),
		eve:     device(tb, "eve", "eve@lab.test"),
		nobody:  device(tb, "nobody"),
		carol:   device(tb, "carol", "carol.ext@LAB.TEST"),
	}
	d.srv.AddBind(bindDN, password)
	carol := ldaptest.User("CN=Carol,CN=Users,"+baseDN, "carol", "carol@lab.test")
	carol.Attrs["altSecurityIdentities"] = [][]byte{[]byte("Kerberos:carol.ext@LAB.TEST")}
	d.srv.Add(
		ldaptest.User("CN=Alice,CN=Users,"+baseDN, "alice", "alice@lab.test"),
		ldaptest.User("CN=Bob Smith,CN=Users,"+baseDN, "bob", "bob.smith@lab.test", d.bob),
		ldaptest.User("CN=Mallory,CN=Users,"+baseDN, "mallory", "mallory@lab.test", d.mallory),
		carol,
	)
	return d
}

func testConfig(d *directory) Config {
	return Config{
		KCDEnabled: true, MappingEnabled: true,
		LDAPURL: d.srv.URL(""), BindDN: bindDN, Password: secret.New(password),
		Domains: []string{"LAB.TEST"},
	}
}

// startService runs the role behind a real gRPC server on 127.0.0.1:0 and
// returns a client for it. Start's error is returned, not fatal.
func startService(tb testing.TB, cfg Config, logs *bytes.Buffer, opts ...Option) (*Service, identityv1.IdentityServiceClient, error) {
	tb.Helper()
	deps := role.Deps{}
	if logs != nil {
		deps.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	return startWith(tb, deps, cfg, opts...)
}

// startWith is startService with the caller's dependencies.
func startWith(tb testing.TB, deps role.Deps, cfg Config, opts ...Option) (*Service, identityv1.IdentityServiceClient, error) {
	tb.Helper()
	svc, err := New(deps, append([]Option{WithConfig(cfg)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	startErr := svc.Start(context.Background())
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
	return svc, identityv1.NewIdentityServiceClient(conn), startErr
}

func mapCert(cl identityv1.IdentityServiceClient, der []byte) (*identityv1.MapCertificateResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.MapCertificate(ctx, &identityv1.MapCertificateRequest{CertificateDer: der})
}

func TestMapCertificate(t *testing.T) {
	d := newDirectory(t, ldaptest.Options{})
	svc, cl, err := startService(t, testConfig(d), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Ready(context.Background()); err != nil {
		t.Fatalf("not ready: %v", err)
	}
	type want struct {
		upn, dn string
		source  identityv1.UPNSource
		code    codes.Code
		msg     string
	}
	tests := []struct {
		name string
		der  []byte
		want want
	}{
		{"bob: no UPN in the certificate, mapped by userCertificate", d.bob,
			want{upn: "bob.smith@lab.test", dn: "CN=Bob Smith,CN=Users," + baseDN, source: identityv1.UPNSource_UPN_SOURCE_LDAP_MAPPING}},
		{"mallory: SAN names alice, the mapping wins", d.mallory,
			want{upn: "mallory@lab.test", dn: "CN=Mallory,CN=Users," + baseDN, source: identityv1.UPNSource_UPN_SOURCE_LDAP_MAPPING}},
		{"eve: unpublished, falls back to the SAN", d.eve,
			want{upn: "eve@lab.test", source: identityv1.UPNSource_UPN_SOURCE_CERTIFICATE_SAN}},
		{"carol: SAN UPN in altSecurityIdentities", d.carol,
			want{upn: "carol@lab.test", dn: "CN=Carol,CN=Users," + baseDN, source: identityv1.UPNSource_UPN_SOURCE_LDAP_MAPPING}},
		{"no mapping and no UPN", d.nobody,
			want{code: codes.PermissionDenied, msg: "publish the certificate to the user's userCertificate"}},
		{"not a certificate", []byte("not DER"), want{code: codes.InvalidArgument, msg: "certificate_der"}},
		{"empty", nil, want{code: codes.InvalidArgument, msg: "certificate_der"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := mapCert(cl, tt.der)
			if tt.want.code != codes.OK {
				if status.Code(err) != tt.want.code || !strings.Contains(err.Error(), tt.want.msg) {
					t.Fatalf("MapCertificate() = %v, %v; want %v with %q", resp, err, tt.want.code, tt.want.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Upn != tt.want.upn || resp.Realm != "LAB.TEST" || resp.UserDn != tt.want.dn || resp.Source != tt.want.source || resp.Cached {
				t.Fatalf("MapCertificate() = %v; want %+v", resp, tt.want)
			}
			again, err := mapCert(cl, tt.der)
			if err != nil || !again.Cached || again.Upn != tt.want.upn {
				t.Fatalf("second MapCertificate() = %v, %v; want a cached %s", again, err, tt.want.upn)
			}
		})
	}
}

func TestMappingOffUsesSAN(t *testing.T) {
	d := newDirectory(t, ldaptest.Options{})
	cfg := testConfig(d)
	cfg.MappingEnabled = false
	_, cl, err := startService(t, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := mapCert(cl, d.mallory)
	if err != nil || resp.Upn != "alice@lab.test" || resp.Source != identityv1.UPNSource_UPN_SOURCE_CERTIFICATE_SAN {
		t.Fatalf("MapCertificate() = %v, %v; want alice from the SAN", resp, err)
	}
	if n := d.srv.Dials(); n != 0 {
		t.Fatalf("the directory was contacted %d times with mapping off", n)
	}
	if _, err := mapCert(cl, d.bob); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "enable cert.mapping.enabled") {
		t.Fatalf("bob without mapping: %v", err)
	}
}

func TestKCDOffIgnoresMapping(t *testing.T) {
	d := newDirectory(t, ldaptest.Options{})
	cfg := testConfig(d)
	cfg.KCDEnabled = false
	var logs bytes.Buffer
	svc, cl, err := startService(t, cfg, &logs)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Ready(context.Background()); err != nil {
		t.Fatalf("Ready() = %v with KCD off", err)
	}
	if !strings.Contains(logs.String(), "config setting ignored") || !strings.Contains(logs.String(), "cert.mapping.enabled") {
		t.Errorf("the ignored setting was not logged: %s", logs.String())
	}
	if _, err := mapCert(cl, d.bob); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("MapCertificate() with KCD off = %v, want FailedPrecondition", err)
	}
	if n := d.srv.Dials(); n != 0 {
		t.Fatalf("the directory was contacted %d times with KCD off", n)
	}
}

func TestDirectoryOutage(t *testing.T) {
	d := newDirectory(t, ldaptest.Options{})
	c := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	cfg := testConfig(d)
	d.srv.Stop()
	var logs bytes.Buffer
	svc, cl, err := startService(t, cfg, &logs, WithClock(c.Now))
	if err != nil {
		t.Fatalf("Start() with the directory down = %v; want a running, unready role", err)
	}
	if err := svc.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("Ready() = %v, want the directory's reason", err)
	}
	// mallory's certificate names alice: during the outage it must be
	// refused, not mapped to alice.
	if _, err := mapCert(cl, d.mallory); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "could not be asked") {
		t.Fatalf("MapCertificate() during the outage = %v, want Unavailable", err)
	}
	if err := d.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	c.Add(10 * time.Second)
	if err := svc.Ready(context.Background()); err != nil {
		t.Fatalf("Ready() after recovery = %v", err)
	}
	resp, err := mapCert(cl, d.mallory)
	if err != nil || resp.Upn != "mallory@lab.test" {
		t.Fatalf("MapCertificate() after recovery = %v, %v", resp, err)
	}
}

func TestStartRefusesBadBind(t *testing.T) {
	d := newDirectory(t, ldaptest.Options{})
	cfg := testConfig(d)
	cfg.Password = secret.New("wrong")
	_, _, err := startService(t, cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "check cert.mapping.ldap.user is a DN and the KCD service account password") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("Start() = %v, want the bind hint without the password", err)
	}
}

func TestLDAPSWithCAFile(t *testing.T) {
	serverTLS, ca := ldaptest.TLSWithCA(t, "127.0.0.1")
	_, otherCA := ldaptest.TLSWithCA(t, "127.0.0.1")
	dir := t.TempDir()
	writeCA := func(name string, c *x509.Certificate) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, testpki.PEM(c), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name     string
		caFile   string
		startErr string
		ready    bool
	}{
		{name: "the DC's CA", caFile: writeCA("ca.pem", ca), ready: true},
		{name: "another CA", caFile: writeCA("other.pem", otherCA), ready: false},
		{name: "missing file", caFile: filepath.Join(dir, "missing.pem"), startErr: "segmesh.identity.ldapCaFile"},
		{name: "not PEM", caFile: func() string {
			p := filepath.Join(dir, "junk.pem")
			_ = os.WriteFile(p, []byte("junk"), 0o600)
			return p
		}(), startErr: "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDirectory(t, ldaptest.Options{TLS: serverTLS, Implicit: true})
			cfg := testConfig(d)
			cfg.LDAPCAFile = tt.caFile
			if tt.startErr != "" {
				// Refused by the role's checks (Validate reads the file as
				// the mapper will), before anything starts.
				_, err := New(role.Deps{}, WithConfig(cfg))
				if err == nil || !strings.Contains(err.Error(), tt.startErr) {
					t.Fatalf("New() = %v, want %q", err, tt.startErr)
				}
				return
			}
			svc, cl, err := startService(t, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			rerr := svc.Ready(context.Background())
			if (rerr == nil) != tt.ready {
				t.Fatalf("Ready() = %v, want ready %v", rerr, tt.ready)
			}
			resp, err := mapCert(cl, d.bob)
			if tt.ready && (err != nil || resp.Upn != "bob.smith@lab.test") {
				t.Fatalf("MapCertificate() over LDAPS = %v, %v", resp, err)
			}
			if !tt.ready && (status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "not signed by a configured CA")) {
				t.Fatalf("MapCertificate() with the wrong CA = %v, want Unavailable naming the CA", err)
			}
		})
	}
}

func TestConfigFrom(t *testing.T) {
	c := config.Default()
	c.BaseDir = "/etc/segmesh"
	c.KCD.Enabled = true
	c.KCD.ServiceAccountPassword = secret.New(password)
	c.KCD.Domains = []config.DomainPair{{Domain: "lab.test", DomainController: "dc1.lab.test"}, {Domain: "LAB.TEST", DomainController: "dc2.lab.test"}, {Domain: "CHILD.LAB.TEST", DomainController: "dc3.child.lab.test"}}
	c.Gateway.CertMappingEnabled = true
	c.Gateway.CertMappingLDAPURL = "ldaps://dc1.lab.test:3269"
	c.Gateway.CertMappingLDAPUser = bindDN
	c.Segmesh.Identity.LDAPCAFile = "certs/ldap-ca.pem"
	c.Segmesh.Identity.LoginIdentity = "onPremisesSamAccountName"
	got := ConfigFrom(&c)
	if got.LoginIdentity != "onPremisesSamAccountName" {
		t.Errorf("LoginIdentity = %q", got.LoginIdentity)
	}
	if strings.Join(got.Domains, ",") != "LAB.TEST,CHILD.LAB.TEST" {
		t.Errorf("Domains = %v", got.Domains)
	}
	if got.LDAPCAFile != filepath.Join("/etc/segmesh", "certs/ldap-ca.pem") {
		t.Errorf("LDAPCAFile = %q", got.LDAPCAFile)
	}
	if !got.MappingHonoured() || got.CacheTTL != 900*time.Second || got.Password.Reveal() != password {
		t.Errorf("ConfigFrom = %+v", got)
	}
	c.KCD.Enabled = false
	if ConfigFrom(&c).MappingHonoured() {
		t.Error("mapping honoured with KCD off")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no domain", Config{KCDEnabled: true}, "kcd.domains"},
		{"bad URL", Config{KCDEnabled: true, MappingEnabled: true, Domains: []string{"LAB.TEST"}, LDAPURL: "http://x", BindDN: bindDN}, "cert.mapping.ldap.url"},
		{"no bind DN", Config{KCDEnabled: true, MappingEnabled: true, Domains: []string{"LAB.TEST"}, LDAPURL: "ldap://x"}, "cert.mapping.ldap.user"},
		{"strong without mapping", Config{KCDEnabled: true, Domains: []string{"LAB.TEST"}, StrongMapping: true}, "strong mapping"},
		{"bad suffix map", Config{KCDEnabled: true, Domains: []string{"LAB.TEST"}, UPNSuffixRealms: map[string]string{"example.com": "OTHER.TEST"}}, "not a configured domain"},
		{"login identity without mapping", Config{KCDEnabled: true, Domains: []string{"LAB.TEST"}, LoginIdentity: "onPremisesUpn"}, "segmesh.identity.loginIdentity"},
		{"unknown login identity", Config{KCDEnabled: true, Domains: []string{"LAB.TEST"}, LoginIdentity: "cloudUpn"}, "onPremisesSamAccountName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(role.Deps{}, WithConfig(tt.cfg))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "identity: ") {
				t.Fatalf("New() = %v, want an error about %q", err, tt.want)
			}
		})
	}
}

func TestConstructorOnDefaults(t *testing.T) {
	c := config.Default()
	r, err := Constructor(role.Deps{Config: &c})
	if err != nil {
		t.Fatal(err)
	}
	if r.Name() != role.Identity {
		t.Fatalf("Name() = %q", r.Name())
	}
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		t.Fatalf("Start() on the defaults = %v", err)
	}
	if err := r.Ready(ctx); err != nil {
		t.Fatalf("Ready() on the defaults = %v", err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	if _, err := New(role.Deps{}); err == nil {
		t.Fatal("New without configuration succeeded")
	}
}
