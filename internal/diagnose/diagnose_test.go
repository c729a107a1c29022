package diagnose

import (
	"bytes"
	"context"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
	"github.com/segmesh/segmesh/pkg/secret"
)

const (
	testRealm = "TEST.REALM"
	testSvcPW = "Svc-Pass-9f3b!"
	testSPN   = "HTTP/exchange.test.realm"
)

// assertNoSecret fails when the report, as JSON or text, holds the
// password or an Authorization value.
func assertNoSecret(t *testing.T, rep Report, password string) {
	t.Helper()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var txt bytes.Buffer
	for _, s := range rep.Steps {
		_ = WriteStep(&txt, s)
	}
	for _, out := range []string{string(b), txt.String()} {
		if strings.Contains(out, password) || strings.Contains(out, "Negotiate Y") || strings.Contains(out, "YII") {
			t.Fatalf("report leaks a secret:\n%s", out)
		}
	}
}

// world is a fake site: a CA whose CRL a CDP serves, a KDC and an Exchange.
type world struct {
	ca       *testpki.Cert
	cfg      *config.Config
	kdc      *kdctest.KDC
	revoked  []testpki.Revoked
	cdpFail  atomic.Bool
	exStatus atomic.Int32
	sawAuth  atomic.Bool
}

// newWorld builds the test world; mods change the fake KDC's configuration.
func newWorld(t testing.TB, mods ...func(*kdctest.Config)) *world {
	t.Helper()
	now := time.Now()
	w := &world{ca: testpki.NewCA(t, "Test Issuing CA", testpki.At(now))}
	w.exStatus.Store(200)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, w.ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cdp := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		if w.cdpFail.Load() {
			http.Error(rw, "down", http.StatusBadGateway)
			return
		}
		_, _ = rw.Write(w.ca.CRL(t, testpki.CRLOptions{ThisUpdate: now.Add(-time.Minute), Revoked: w.revoked}))
	}))
	t.Cleanup(cdp.Close)
	ex := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodOptions || r.URL.Path != "/Microsoft-Server-ActiveSync" {
			http.Error(rw, "unexpected", http.StatusTeapot)
			return
		}
		w.sawAuth.Store(strings.HasPrefix(r.Header.Get("Authorization"), "Negotiate "))
		rw.Header().Set("MS-ASProtocolVersions", "14.1,16.1")
		rw.Header().Set("X-Lab-Remote-User", "alice@TEST.REALM")
		rw.WriteHeader(int(w.exStatus.Load()))
	}))
	t.Cleanup(ex.Close)
	kcfg := kdctest.Config{
		Realm: testRealm, Service: "svc_seg", ServicePassword: testSvcPW, ServiceSPNs: []string{"HTTP/seg.test.realm"},
		Users: []string{"alice", "eve"}, UPNs: map[string]string{"alice@test.realm": "alice", "eve@test.realm": "eve"},
		Sensitive: []string{"eve"}, DelegateTo: []string{testSPN}, Targets: map[string]string{testSPN: "Exch-Pass-1!", "HTTP/other.test.realm": "Other-Pass-1!"},
		LenientChecksumType: true,
	}
	for _, m := range mods {
		m(&kcfg)
	}
	w.kdc = kdctest.Start(t, kcfg)
	c := config.Default()
	c.Path, c.BaseDir = filepath.Join(dir, "config.json"), dir
	c.ClientCertTrustStorePath = caFile
	c.RequireClientCertificate = true
	c.KCD = config.KCD{Enabled: true, TargetSPN: testSPN, ServiceAccountUserName: "svc_seg", ServiceAccountPassword: secret.New(testSvcPW),
		Domains: []config.DomainPair{{Domain: testRealm, DomainController: w.kdc.Addr()}}}
	c.Gateway.RevocationEnabled = true
	c.Gateway.CRLURIs = []string{cdp.URL + "/ca.crl"}
	c.Segmesh.Edge.ExchangeURLs = []string{ex.URL}
	w.cfg = &c
	return w
}

// leaf issues a device certificate for the UPN with the given serial.
func (w *world) leaf(t testing.TB, name string, serial int64, ca *testpki.Cert) []byte {
	t.Helper()
	return ca.Device(t, name, testpki.Serial(big.NewInt(serial)), testpki.UPN(name)).PEM()
}

func TestRunNamesTheFailingStepAndFix(t *testing.T) {
	other := testpki.NewCA(t, "Other CA")
	cases := []struct {
		name   string
		user   string
		setup  func(w *world)
		kdc    func(*kdctest.Config)
		ca     *testpki.Cert
		step   string
		code   string
		fixHas string
	}{
		{name: "all pass", user: "alice@test.realm"},
		{name: "revocation off is skipped and passes", user: "alice@test.realm", setup: func(w *world) { w.cfg.Gateway.RevocationEnabled = false }},
		{name: "untrusted issuer", user: "alice@test.realm", ca: other, step: StepTrust, code: "unknown_authority", fixHas: "Microsoft Management Console"},
		{name: "revoked", user: "alice@test.realm", setup: func(w *world) {
			w.revoked = []testpki.Revoked{{Serial: big.NewInt(42), At: time.Now().Add(-time.Minute)}}
		}, step: StepRevocation, code: "revoked", fixHas: "new certificate"},
		// The edge refuses a certificate whose issuer has no CRL under
		// useCertificateCdps (crl.Snapshot.Decide); diagnose says so too
		// instead of "not revoked" (issue 17).
		{name: "issuer without a CRL under useCertificateCdps", user: "alice@test.realm", setup: func(w *world) {
			w.cfg.Gateway.CRLURIs = nil
			w.cfg.Segmesh.CRL.UseCertificateCDPs = true
		}, step: StepRevocation, code: "crl_unknown_issuer", fixHas: config.KeyCRLURIs},
		{name: "CDP down", user: "alice@test.realm", setup: func(w *world) { w.cdpFail.Store(true) },
			step: StepRevocation, code: "cdp_unreachable", fixHas: "over LDAP and not HTTP"},
		{name: "unknown suffix: the primary realm's KDC is asked, the fix names the suffix and the settings", user: "alice@elsewhere.example", step: StepS4U2Self, code: "KDC_ERR_C_PRINCIPAL_UNKNOWN", fixHas: "the UPN suffix elsewhere.example is not a configured domain"},
		{name: "wrong service password", user: "alice@test.realm", setup: func(w *world) { w.cfg.KCD.ServiceAccountPassword = secret.New("nope") },
			step: StepTGT, fixHas: "kcd.serviceAccountPassword"},
		{name: "KDC down", user: "alice@test.realm", setup: func(w *world) { w.kdc.Close() },
			step: StepTGT, code: "kdc_unreachable", fixHas: "Fully Qualified Domain Name"},
		{name: "unknown user", user: "nobody@test.realm", step: StepS4U2Self, code: "KDC_ERR_C_PRINCIPAL_UNKNOWN", fixHas: `Kerberos:USERNAME@DOMAIN.NAME`},
		{name: "sensitive user", user: "eve@test.realm", step: StepS4U2Proxy, code: "KDC_ERR_BADOPTION", fixHas: "sensitive"},
		{name: "SPN not delegated", user: "alice@test.realm", setup: func(w *world) { w.cfg.KCD.TargetSPN = "HTTP/other.test.realm" },
			step: StepS4U2Proxy, code: "KDC_ERR_BADOPTION", fixHas: "msDS-AllowedToActOnBehalfOfOtherIdentity"},
		{name: "the KDC picks an RC4 session key the gateway did not offer", user: "alice@test.realm", kdc: func(c *kdctest.Config) { c.TGSSessionEtype = etypeID.RC4_HMAC },
			step: StepS4U2Self, code: "session_key_etype", fixHas: "DefaultDomainSupportedEncTypes"},
		{name: "Exchange refuses the ticket", user: "alice@test.realm", setup: func(w *world) { w.exStatus.Store(401) },
			step: StepExchange, code: "http_401", fixHas: "Negotiate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*kdctest.Config)
			if tc.kdc != nil {
				mods = append(mods, tc.kdc)
			}
			w := newWorld(t, mods...)
			if tc.setup != nil {
				tc.setup(w)
			}
			ca := w.ca
			if tc.ca != nil {
				ca = tc.ca
			}
			var seen []StepResult
			rep := Run(context.Background(), Options{Config: w.cfg, CertPEM: w.leaf(t, tc.user, 42, ca), StepTimeout: 5 * time.Second,
				Progress: func(r StepResult) { seen = append(seen, r) }})
			if len(seen) != len(Steps()) {
				t.Fatalf("progress called %d times, want %d", len(seen), len(Steps()))
			}
			assertNoSecret(t, rep, testSvcPW)
			if tc.step == "" {
				if !rep.OK {
					t.Fatalf("failed at %s: %+v", rep.FailedStep, rep.Steps)
				}
				if !w.sawAuth.Load() {
					t.Error("Exchange got no Negotiate header")
				}
				if rep.Exchange == nil || rep.Exchange.RemoteUser != "alice@TEST.REALM" || rep.User == nil || rep.User.Source != "certificate_san" {
					t.Errorf("report: exchange %+v user %+v", rep.Exchange, rep.User)
				}
				return
			}
			if rep.OK || rep.FailedStep != tc.step {
				t.Fatalf("failed step %q, want %q: %+v", rep.FailedStep, tc.step, rep.Steps)
			}
			for i, s := range rep.Steps {
				switch {
				case s.Name == tc.step:
					if tc.code != "" && s.Code != tc.code {
						t.Errorf("code %q, want %q (cause %s)", s.Code, tc.code, s.Cause)
					}
					if !strings.Contains(s.Fix, tc.fixHas) {
						t.Errorf("fix %q lacks %q", s.Fix, tc.fixHas)
					}
					for _, later := range rep.Steps[i+1:] {
						if later.Status != StatusSkip || !strings.HasPrefix(later.Detail, "skipped: needs ") {
							t.Errorf("%s after the failure: %+v", later.Name, later)
						}
					}
				case s.Status == StatusFail:
					t.Errorf("%s failed too", s.Name)
				}
			}
		})
	}
}

func TestRevocationOffIsSkippedWithReason(t *testing.T) {
	w := newWorld(t)
	w.cfg.Gateway.RevocationEnabled = false
	rep := Run(context.Background(), Options{Config: w.cfg, CertPEM: w.leaf(t, "alice@test.realm", 7, w.ca)})
	r := rep.Steps[2]
	if r.Name != StepRevocation || r.Status != StatusSkip || !strings.Contains(r.Detail, config.KeyRevocationEnabled) {
		t.Fatalf("revocation step %+v", r)
	}
}

func TestCertificateStep(t *testing.T) {
	w := newWorld(t)
	cases := []struct {
		name string
		cert []byte
		key  []byte
		code string
	}{
		{"garbage", []byte("not a certificate"), nil, "malformed_certificate"},
		{"key of another certificate", w.leaf(t, "alice@test.realm", 3, w.ca), testpki.SelfSigned(t, "other").KeyPEM(t), "key_mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := Run(context.Background(), Options{Config: w.cfg, CertPEM: tc.cert, KeyPEM: tc.key})
			if rep.FailedStep != StepCertificate || rep.Steps[0].Code != tc.code {
				t.Fatalf("got %q %+v", rep.FailedStep, rep.Steps[0])
			}
		})
	}
}

func TestWriteStep(t *testing.T) {
	cases := []struct {
		r    StepResult
		want []string
	}{
		{StepResult{Name: "tgt", Title: "TGT", Status: StatusPass, DurationMS: 12.3, Detail: "krbtgt/X"}, []string{"✓ tgt", "(12 ms)", "krbtgt/X"}},
		{StepResult{Name: "s4u2self", Title: "S", Status: StatusFail, DurationMS: 2, Cause: "c1", Fix: "f1"}, []string{"✗ s4u2self", "cause: c1", "fix:   f1"}},
		{StepResult{Name: "exchange", Title: "E", Status: StatusSkip, Detail: "skipped: needs x"}, []string{"– exchange", "skipped: needs x"}},
	}
	for _, tc := range cases {
		t.Run(tc.r.Name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteStep(&b, tc.r); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("%q lacks %q", b.String(), w)
				}
			}
		})
	}
}

func TestNoteReportsEachCDP(t *testing.T) {
	w := newWorld(t)
	w.cfg.Gateway.CRLURIs = append(w.cfg.Gateway.CRLURIs, "http://127.0.0.1:1/none.crl")
	var notes []string
	rep := Run(context.Background(), Options{Config: w.cfg, CertPEM: w.leaf(t, "alice@test.realm", 5, w.ca),
		Note: func(step, msg string) { notes = append(notes, step+": "+msg) }})
	if rep.FailedStep != StepRevocation || len(notes) != 2 || !strings.HasPrefix(notes[0], "revocation: fetched ") || !strings.HasPrefix(notes[1], "revocation: cannot fetch ") {
		t.Fatalf("failed %q, notes %q", rep.FailedStep, notes)
	}
}

func FuzzParseCerts(f *testing.F) {
	ca := testpki.NewCA(f, "Fuzz CA")
	f.Add(ca.PEM())
	f.Add(ca.Cert.Raw)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		certs, err := parseCerts(b)
		if err == nil && (len(certs) == 0 || certs[0] == nil) {
			t.Fatal("no error and no certificate")
		}
	})
}

func BenchmarkRun(b *testing.B) {
	w := newWorld(b)
	cert := w.leaf(b, "alice@test.realm", 9, w.ca)
	for b.Loop() {
		if rep := Run(context.Background(), Options{Config: w.cfg, CertPEM: cert}); !rep.OK {
			b.Fatalf("failed at %s", rep.FailedStep)
		}
	}
}
