package crl

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/segmesh/segmesh/pkg/config"
	pkgcrl "github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
	"github.com/segmesh/segmesh/pkg/role"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// cdp serves whatever CRL the test sets, or 503.
type cdp struct {
	srv  *httptest.Server
	body atomic.Pointer[[]byte]
}

func newCDP(t *testing.T) *cdp {
	t.Helper()
	c := &cdp{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		b := c.body.Load()
		if b == nil {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(*b)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *cdp) serve(b []byte) { c.body.Store(&b) }
func (c *cdp) url() string    { return c.srv.URL + "/CertEnroll/Lab%20CA.crl" }

type fixture struct {
	ca, stranger *crltest.CA
	cdp          *cdp
	now          time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	return &fixture{ca: crltest.NewCA(t, "Lab CA", now), stranger: crltest.NewCA(t, "Stranger CA", now), cdp: newCDP(t), now: now}
}

func (f *fixture) crl(t *testing.T, number int64, serials ...int64) []byte {
	t.Helper()
	var rv []crltest.Revoked
	for _, s := range serials {
		rv = append(rv, crltest.Revoked{Serial: big.NewInt(s), At: f.now.Add(-time.Minute), Reason: 1})
	}
	return f.ca.CRL(t, crltest.CRLOptions{Number: number, ThisUpdate: f.now.Add(-time.Duration(10-number) * time.Minute), Revoked: rv})
}

func (f *fixture) config(t *testing.T) Config {
	t.Helper()
	return Config{
		Enabled:  true,
		URLs:     []string{f.cdp.url()},
		Interval: time.Hour,
		FailHard: true,
		StateDir: t.TempDir(),
	}
}

func (f *fixture) service(t *testing.T, cfg Config) *Service {
	t.Helper()
	s, err := New(role.Deps{Logger: slog.New(slog.DiscardHandler)}, WithConfig(cfg),
		WithTrusted(func() []*x509.Certificate { return []*x509.Certificate{f.ca.Cert} }),
		WithFetcher(&fetch.Fetcher{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s
}

// serve runs s's API on a loopback port and returns a client.
func serve(t *testing.T, s *Service) crlv1.RevocationServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	s.RegisterGRPC(gs)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return crlv1.NewRevocationServiceClient(conn)
}

func TestStartFailHard(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failHard bool
		wantErr  bool
	}{
		{"fail hard", true, true},
		{"fail soft", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t) // the distribution point answers 503
			cfg := f.config(t)
			cfg.FailHard = tc.failHard
			s := f.service(t, cfg)
			err := s.Start(context.Background())
			if (err != nil) != tc.wantErr {
				t.Fatalf("Start = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), f.cdp.url()) || !strings.Contains(err.Error(), "503") {
					t.Fatalf("Start error %q does not name the URL and the cause", err)
				}
				if s.Ready(context.Background()) == nil {
					t.Fatal("ready after a failed start")
				}
				return
			}
			// Started, but not ready while it knows less than a replica
			// that has the CRL (issue 17): it names the distribution point.
			if err := s.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), f.cdp.url()) {
				t.Fatalf("Ready after a fail-soft start without the CRL = %v, want the URL named", err)
			}
			// It keeps trying: once the distribution point is back, the CRL is used.
			f.cdp.serve(f.crl(t, 1, 5))
			s.refresher.RefreshNow(context.Background())
			if err := s.Ready(context.Background()); err != nil {
				t.Fatalf("Ready with the CRL: %v", err)
			}
			revoked, _, known, _ := s.Check(f.ca.Leaf(t, big.NewInt(5), f.now))
			if !revoked || !known {
				t.Fatalf("after recovery: revoked %v known %v", revoked, known)
			}
		})
	}
}

func TestWatchSnapshotsAndCheck(t *testing.T) {
	f := newFixture(t)
	f.cdp.serve(f.crl(t, 1, 5))
	s := f.service(t, f.config(t))
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	client := serve(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	first, err := client.WatchSnapshots(ctx, &crlv1.WatchSnapshotsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := first.Recv()
	if err != nil {
		t.Fatal(err)
	}
	wantKey := pkgcrl.KeyOf(f.ca.Cert.RawSubject, f.ca.Cert.SubjectKeyId)
	if len(m.GetCrls()) != 1 {
		t.Fatalf("%d CRLs in the snapshot", len(m.GetCrls()))
	}
	c := m.GetCrls()[0]
	if string(c.GetIssuerKey()) != string(wantKey[:]) || c.GetSourceUrl() != f.cdp.url() || c.GetCrlNumber() != "1" ||
		len(c.GetRevokedSerials()) != 1 || new(big.Int).SetBytes(c.GetRevokedSerials()[0]).Int64() != 5 ||
		c.GetIssuer() != f.ca.Cert.Subject.String() || c.GetStale() || c.GetNextUpdate() == nil || c.GetFetchedAt() == nil {
		t.Fatalf("snapshot CRL %+v", c)
	}
	v1 := m.GetVersion()

	// A watcher that already holds v1 gets nothing until the next version.
	second, err := client.WatchSnapshots(ctx, &crlv1.WatchSnapshotsRequest{KnownVersion: v1})
	if err != nil {
		t.Fatal(err)
	}

	checks := []struct {
		name string
		cert *x509.Certificate
		want crlv1.RevocationStatus
	}{
		{"revoked", f.ca.Leaf(t, big.NewInt(5), f.now), crlv1.RevocationStatus_REVOCATION_STATUS_REVOKED},
		{"good", f.ca.Leaf(t, big.NewInt(6), f.now), crlv1.RevocationStatus_REVOCATION_STATUS_GOOD},
		{"unknown issuer", f.stranger.Leaf(t, big.NewInt(5), f.now), crlv1.RevocationStatus_REVOCATION_STATUS_UNKNOWN},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.Check(ctx, &crlv1.CheckRequest{CertificateDer: tc.cert.Raw})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetStatus() != tc.want || resp.GetSnapshotVersion() != v1 || resp.GetSerial() != tc.cert.SerialNumber.Text(16) {
				t.Fatalf("Check = %v", resp)
			}
			if tc.want == crlv1.RevocationStatus_REVOCATION_STATUS_REVOKED && !resp.GetRevokedAt().AsTime().Equal(f.now.Add(-time.Minute)) {
				t.Fatalf("revoked_at %v", resp.GetRevokedAt().AsTime())
			}
		})
	}
	if _, err := client.Check(ctx, &crlv1.CheckRequest{CertificateDer: []byte("junk")}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Check(junk) = %v, want InvalidArgument", err)
	}

	// Serial 7 revoked after start: both streams get the new version.
	f.cdp.serve(f.crl(t, 2, 5, 7))
	s.refresher.RefreshNow(context.Background())
	for name, st := range map[string]crlv1.RevocationService_WatchSnapshotsClient{"first": first, "second": second} {
		m, err := st.Recv()
		if err != nil {
			t.Fatalf("%s stream: %v", name, err)
		}
		if m.GetVersion() != v1+1 || len(m.GetCrls()) != 1 || len(m.GetCrls()[0].GetRevokedSerials()) != 2 {
			t.Fatalf("%s stream got version %d (want %d) with %v", name, m.GetVersion(), v1+1, m.GetCrls())
		}
	}
	resp, err := client.Check(ctx, &crlv1.CheckRequest{CertificateDer: f.ca.Leaf(t, big.NewInt(7), f.now).Raw})
	if err != nil || resp.GetStatus() != crlv1.RevocationStatus_REVOCATION_STATUS_REVOKED {
		t.Fatalf("serial 7 after refresh: %v, %v", resp, err)
	}

	// Stop ends the streams so GracefulStop does not wait on them.
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("stream after Stop: %v, want Unavailable", err)
	}
	if s.Ready(context.Background()) == nil {
		t.Fatal("ready after Stop")
	}
}

func TestStaleRefused(t *testing.T) {
	f := newFixture(t)
	f.cdp.serve(f.ca.CRL(t, crltest.CRLOptions{Number: 1, ThisUpdate: f.now.Add(-48 * time.Hour), NextUpdate: f.now.Add(-24 * time.Hour)}))
	cfg := f.config(t)
	cfg.FailClosedOnStale = true
	s := f.service(t, cfg)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	client := serve(t, s)
	resp, err := client.Check(context.Background(), &crlv1.CheckRequest{CertificateDer: f.ca.Leaf(t, big.NewInt(6), f.now).Raw})
	if err != nil || resp.GetStatus() != crlv1.RevocationStatus_REVOCATION_STATUS_STALE_REFUSED {
		t.Fatalf("Check of an unlisted certificate under an expired CRL = %v, %v", resp, err)
	}
	if c := s.message(s.Snapshot()).GetCrls()[0]; !c.GetStale() || !c.GetFailClosed() {
		t.Fatalf("snapshot CRL not stale and fail-closed: %v", c)
	}
}

func TestDisabledServesEmptySnapshot(t *testing.T) {
	f := newFixture(t)
	cfg := f.config(t)
	cfg.Enabled = false
	s := f.service(t, cfg)
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	client := serve(t, s)
	st, err := client.WatchSnapshots(context.Background(), &crlv1.WatchSnapshotsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.Recv()
	if err != nil || len(m.GetCrls()) != 0 || m.GetVersion() == 0 {
		t.Fatalf("snapshot %v, %v; want an empty one", m, err)
	}
}

func TestStartLoadsTrustStoreAndStoredCRLs(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "lab-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.ca.Cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	c.BaseDir = dir
	c.RequireClientCertificate = true
	c.ClientCertTrustStorePath = "lab-ca.pem"
	c.Gateway.RevocationEnabled = true
	c.Gateway.CRLURIs = []string{f.cdp.url()}
	f.cdp.serve(f.crl(t, 3, 5))

	start := func() (*Service, error) {
		r, err := Constructor(role.Deps{Config: &c, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("Constructor: %v", err)
		}
		s := r.(*Service)
		t.Cleanup(func() { _ = s.Stop(context.Background()) })
		return s, s.Start(context.Background())
	}
	s, err := start()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if revoked, _, known, _ := s.Check(f.ca.Leaf(t, big.NewInt(5), f.now)); !revoked || !known {
		t.Fatalf("with the trust store from %s: revoked %v known %v", caFile, revoked, known)
	}
	if _, err := os.Stat(filepath.Join(dir, DefaultStateDir)); err != nil {
		t.Fatalf("no state directory beside config.json: %v", err)
	}
	// Restart while the distribution point is down: the stored CRL is used.
	f.cdp.body.Store(nil)
	s2, err := start()
	if err != nil {
		t.Fatalf("restart with the CDP down: %v", err)
	}
	if revoked, _, _, _ := s2.Check(f.ca.Leaf(t, big.NewInt(5), f.now)); !revoked {
		t.Fatal("stored CRL not enforced after restart")
	}
}

func TestConfigFrom(t *testing.T) {
	base := func() config.Config {
		c := config.Default()
		c.BaseDir = "/opt/segmesh"
		c.KCD.Enabled = true
		c.Gateway.RevocationEnabled = true
		c.Gateway.CRLURIs = []string{"http://pki/ca.crl"}
		return c
	}
	tests := []struct {
		name  string
		mod   func(*config.Config)
		check func(Config) bool
	}{
		{"defaults", func(*config.Config) {}, func(g Config) bool {
			return g.Enabled && g.FailHard && g.Interval == 1440*time.Minute && g.StateDir == "/opt/segmesh/crl-cache"
		}},
		{"seconds override", func(c *config.Config) { c.Segmesh.CRL.FetchIntervalSeconds = 5 }, func(g Config) bool { return g.Interval == 5*time.Second }},
		{"minutes", func(c *config.Config) { c.Gateway.CRLFetchIntervalMinutes = 30 }, func(g Config) bool { return g.Interval == 30*time.Minute }},
		{"not honoured without KCD or client certificates", func(c *config.Config) { c.KCD.Enabled = false }, func(g Config) bool { return !g.Enabled }},
		{"state dir absolute", func(c *config.Config) { c.Segmesh.CRL.StateDir = "/var/lib/segmesh/crl" }, func(g Config) bool { return g.StateDir == "/var/lib/segmesh/crl" }},
		{"fail soft", func(c *config.Config) { c.Gateway.FailHardOnCRLDownload = false }, func(g Config) bool { return !g.FailHard }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			if got := ConfigFrom(&c); !tc.check(got) {
				t.Fatalf("ConfigFrom = %+v", got)
			}
		})
	}
	c := base()
	c.Gateway.CRLURIs = nil
	if _, err := New(role.Deps{Config: &c}); err == nil || !strings.Contains(err.Error(), config.KeyCRLURIs) {
		t.Fatalf("New without URLs = %v, want an error naming %s", err, config.KeyCRLURIs)
	}
}

func TestCheckLearnsCertificateCDPs(t *testing.T) {
	f := newFixture(t)
	f.cdp.serve(f.crl(t, 1, 5))
	cfg := f.config(t)
	cfg.URLs = nil
	cfg.UseCertificateCDPs = true
	s := f.service(t, cfg)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	leaf := f.ca.Leaf(t, big.NewInt(5), f.now, f.cdp.url())
	forged := f.stranger.Leaf(t, big.NewInt(5), f.now, f.cdp.srv.URL+"/stranger.crl")
	if _, _, known, _ := s.Check(forged); known {
		t.Fatal("stranger's issuer known")
	}
	if _, _, known, _ := s.Check(leaf); known {
		t.Fatal("issuer known before its CDP was learnt")
	}
	s.refresher.RefreshNow(context.Background())
	if revoked, _, known, _ := s.Check(leaf); !revoked || !known {
		t.Fatalf("after learning the CDP: revoked %v known %v", revoked, known)
	}
	for _, st := range s.refresher.Status() {
		if strings.Contains(st.URL, "stranger") {
			t.Fatal("a CDP from a certificate no trusted CA signed was added")
		}
	}
}

func bigInt(n int64) *big.Int { return big.NewInt(n) }
