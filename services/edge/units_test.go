package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
	"google.golang.org/grpc/codes"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/negotiate"
	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

func TestConfigPaths(t *testing.T) {
	c := config.Default()
	c.Segmesh.Edge.ExchangeURLs = []string{"https://mail.lab.test/"}
	cfg, err := newConfig(&c)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Upstreams[0].Path != "" {
		t.Errorf("upstream path %q, want the trailing slash trimmed", cfg.Upstreams[0].Path)
	}
	tests := map[string]bool{
		"/Microsoft-Server-ActiveSync":    true,
		"/Microsoft-Server-ActiveSync/x":  true,
		"/MICROSOFT-SERVER-ACTIVESYNC":    true,
		"/Microsoft-Server-ActiveSync2":   false,
		"/EWS/Exchange.asmx":              true,
		"/EWS":                            false,
		"/autodiscover/autodiscover.xml":  true,
		"/owa/auth.owa":                   false,
		"/ecp/":                           false,
		"/../Microsoft-Server-ActiveSync": false,
		"/EWS/../owa/":                    false,
		"/EWS/./Exchange.asmx":            false,
		"/Microsoft-Server-ActiveSync/..": false,
		`/EWS/..\owa`:                     false,
	}
	for p, want := range tests {
		if got := cfg.allowedPath(p); got != want {
			t.Errorf("allowedPath(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"KCD without SPN", func(c *config.Config) { c.KCD.Enabled = true }, "kcd.targetSPN"},
		{"bad upstream", func(c *config.Config) { c.Segmesh.Edge.ExchangeURLs = []string{"mail.lab.test"} }, "exchangeUrls[0]"},
		{"relative path", func(c *config.Config) { c.Segmesh.Edge.Paths = []string{"EWS/"} }, "paths[0]"},
		{"no listen", func(c *config.Config) { c.Segmesh.Edge.Listen = "" }, "segmesh.edge.listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.mutate(&c)
			if _, err := newConfig(&c); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

func TestServerCertificateSources(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "Server CA")
	leaf := ca.issue(t, certOpts{cn: "edge.lab.test", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	pfxData, err := pkcs12.Modern.Encode(leaf.PrivateKey, leaf.Leaf, []*x509.Certificate{ca.cert}, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	pfxPath := writeFile(t, dir, "edge.pfx", pfxData)
	certPath := writeFile(t, dir, "edge.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]}))
	keyPath := writeFile(t, dir, "edge.key", keyPEM(t, leaf))
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	tests := []struct {
		name      string
		cfg       Config
		wantCN    string
		wantChain int
		wantErr   string
	}{
		{"PEM pair", Config{ServerCertFile: certPath, ServerKeyFile: keyPath}, "edge.lab.test", 1, ""},
		{"PFX with chain", Config{ServerPFXFile: pfxPath, ServerPFXPasscode: "s3cret"}, "edge.lab.test", 2, ""},
		{"PFX wrong passcode", Config{ServerPFXFile: pfxPath, ServerPFXPasscode: "nope"}, "", 0, "serverPfxPasscode"},
		{"self-signed", Config{}, "segmesh edge (self-signed)", 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadServerCertificate(&tt.cfg, log, time.Now())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "nope") {
					t.Fatalf("err = %v, want one naming %s without the passcode", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l, err := x509.ParseCertificate(c.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if l.Subject.CommonName != tt.wantCN || len(c.Certificate) != tt.wantChain {
				t.Fatalf("CN %q chain %d, want %q %d", l.Subject.CommonName, len(c.Certificate), tt.wantCN, tt.wantChain)
			}
		})
	}
	if !strings.Contains(logs.String(), "self-signed") {
		t.Fatal("no warning for the self-signed certificate")
	}
}

// countingTickets is a ticketSource that counts calls and can block them.
type countingTickets struct {
	calls   atomic.Int64
	release chan struct{}
	err     error
	end     time.Duration
	now     func() time.Time
}

func (c *countingTickets) GetServiceTicket(ctx context.Context, upn, spn string) (*Ticket, error) {
	c.calls.Add(1)
	if c.release != nil {
		select {
		case <-c.release:
		case <-ctx.Done():
			return nil, ticketErrorOf(statusErr(codes.DeadlineExceeded, ctx.Err().Error()))
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	return &Ticket{DER: []byte("t"), SessionKey: []byte("k"), CName: upn, EndTime: c.now().Add(c.end)}, nil
}

func (c *countingTickets) Invalidate(context.Context, string, string) error { return nil }

type constNegotiator struct{}

func (constNegotiator) header(negotiate.Binding) (string, time.Time, error) {
	return "Negotiate x", time.Time{}, nil
}

func (constNegotiator) verifyReply(string, time.Time) error { return nil }

func fakeFactory(*Ticket) (negotiator, error) { return constNegotiator{}, nil }

func TestTicketCacheOneRPCForConcurrentMisses(t *testing.T) {
	src := &countingTickets{release: make(chan struct{}), end: 10 * time.Hour, now: time.Now}
	c := newTicketCache(src, fakeFactory, 5*time.Minute, time.Minute, 100, time.Now)
	var wg sync.WaitGroup
	entries := make([]*ticketEntry, 50)
	for i := range entries {
		wg.Go(func() {
			e, _, err := c.get(context.Background(), "alice@lab.test", "HTTP/mail")
			if err != nil {
				t.Error(err)
			}
			entries[i] = e
		})
	}
	waitFor(t, "the first call", func() bool { return src.calls.Load() == 1 })
	close(src.release)
	wg.Wait()
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("%d RPCs for 50 concurrent misses, want 1", n)
	}
	for _, e := range entries {
		if e != entries[0] {
			t.Fatal("callers got different entries")
		}
	}
	if _, hit, _ := c.get(context.Background(), "alice@lab.test", "HTTP/mail"); !hit {
		t.Fatal("second lookup missed the cache")
	}
}

func TestTicketErrorClassification(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		unavailable bool
		status      int
	}{
		{"KDC unreachable", statusErr(codes.Unavailable, "dial tcp: refused"), true, 503},
		{"deadline", statusErr(codes.DeadlineExceeded, "slow KDC"), true, 503},
		{"principal unknown", kdcError(codes.NotFound, 6, "KDC_ERR_C_PRINCIPAL_UNKNOWN", "hint"), false, 403},
		{"not delegable", kdcError(codes.PermissionDenied, 13, "KDC_ERR_BADOPTION", "hint"), false, 403},
		{"internal with KDC code", kdcError(codes.Internal, 41, "KRB_AP_ERR_MODIFIED", "hint"), false, 403},
		{"internal without KDC code", statusErr(codes.Internal, "boom"), true, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := ticketErrorOf(tt.err)
			if te.Unavailable != tt.unavailable {
				t.Fatalf("Unavailable = %v, want %v", te.Unavailable, tt.unavailable)
			}
			if f := failureOf(te, 30); f.Status != tt.status {
				t.Fatalf("status %d, want %d", f.Status, tt.status)
			}
		})
	}
	if te := ticketErrorOf(kdcError(codes.NotFound, 6, "KDC_ERR_C_PRINCIPAL_UNKNOWN", "add altSecurityIdentities")); te.Hint != "add altSecurityIdentities" || te.Code != 6 {
		t.Fatalf("detail lost: %+v", te)
	}
}

func TestNegotiatorFreshAuthenticator(t *testing.T) {
	ft := newFakeTickets()
	resp, err := ft.GetServiceTicket(context.Background(), &ticketv1.GetServiceTicketRequest{UserPrincipal: "bob.smith@lab.test", TargetSpn: "HTTP/mail.lab.test"})
	if err != nil {
		t.Fatal(err)
	}
	tk := &Ticket{DER: resp.GetTicketDer(), SessionKey: resp.GetSessionKey(), Etype: 18, CName: resp.GetClientName(), CNameType: 10, CRealm: "LAB.TEST"}
	at := time.Date(2026, 11, 25, 13, 0, 0, 123456000, time.UTC)
	n, err := newNegotiatorFactory(func() time.Time { return at })(tk)
	if err != nil {
		t.Fatal(err)
	}
	h1, _, err := n.header(negotiate.Binding{})
	if err != nil {
		t.Fatal(err)
	}
	h2, _, _ := n.header(negotiate.Binding{})
	if h1 == h2 {
		t.Fatal("two headers are identical: the authenticator is not fresh")
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(h1, "Negotiate "))
	var tok spnego.SPNEGOToken
	if err := tok.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	var k5 spnego.KRB5Token
	if err := k5.Unmarshal(tok.NegTokenInit.MechTokenBytes); err != nil {
		t.Fatal(err)
	}
	if err := k5.APReq.DecryptAuthenticator(types.EncryptionKey{KeyType: 18, KeyValue: tk.SessionKey}); err != nil {
		t.Fatal(err)
	}
	a := k5.APReq.Authenticator
	if a.CRealm != "LAB.TEST" || a.CName.NameType != 10 || a.CName.NameString[0] != "bob.smith@lab.test" {
		t.Fatalf("authenticator names %v@%s, want the reply's cname and crealm", a.CName, a.CRealm)
	}
	if !a.CTime.Equal(at.Truncate(time.Second)) || a.Cusec != 123456 {
		t.Fatalf("ctime %v cusec %d, want the injected time", a.CTime, a.Cusec)
	}
	if len(a.Cksum.Checksum) != 24 || a.Cksum.CksumType != 0x8003 {
		t.Fatalf("GSS checksum %x type %d", a.Cksum.Checksum, a.Cksum.CksumType)
	}
}

func TestKCDOffPassesAuthorizationThrough(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.KCD = config.KCD{} }, options{})
	var got []string
	h.exchange.srv.Config.Handler = httpHandler(func(auth []string) { got = auth })
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	resp, _ := get(t, h.client(&cert, false), h.url("/EWS/Exchange.asmx"), map[string]string{"Authorization": "Basic YTpi"})
	if resp.StatusCode != 200 || len(got) != 1 || got[0] != "Basic YTpi" {
		t.Fatalf("status %d Authorization %q: without KCD the device's credentials pass through", resp.StatusCode, got)
	}
	if h.idm.calls.Load() != 0 || h.tickets.gets.Load() != 0 {
		t.Fatal("identity or ticket called with KCD off")
	}
}

func TestResumedSessionIsVerifiedAgain(t *testing.T) {
	h := newHarness(t, nil, options{})
	cert := h.ca.issue(t, certOpts{cn: "alice", serial: 0x77})
	pool := x509.NewCertPool()
	pool.AddCert(h.serverCA.cert)
	cache := tls.NewLRUClientSessionCache(4)
	dial := func() (*tls.Conn, error) {
		c, err := tls.Dial("tcp", h.edge.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "edge.lab.test",
			Certificates: []tls.Certificate{cert}, ClientSessionCache: cache, MaxVersion: tls.VersionTLS12})
		if err != nil {
			return nil, err
		}
		// The server's verdict arrives with its first answer.
		_, _ = c.Write([]byte("OPTIONS /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: x\r\n\r\n"))
		buf := make([]byte, 12)
		_, err = c.Read(buf)
		return c, err
	}
	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if c, err = dial(); err != nil {
		t.Fatal(err)
	}
	if !c.ConnectionState().DidResume {
		t.Fatal("the second connection did not resume; the test would prove nothing")
	}
	c.Close()
	h.crl.revoke(h.ca, 0x77)
	waitFor(t, "snapshot", func() bool { return h.edge.revocation.current() >= 2 })
	c, err = dial()
	if err == nil {
		resumed := c.ConnectionState().DidResume
		c.Close()
		t.Fatalf("revoked certificate accepted on a resumed session (resumed=%v)", resumed)
	}
	if !strings.Contains(h.logs.String(), "serial=77") {
		t.Fatal("refusal of the resumed session not logged with the serial")
	}
}

func TestHungTicketRoleTimesOut(t *testing.T) {
	hung := &countingTickets{release: make(chan struct{}), end: time.Hour, now: time.Now}
	t.Cleanup(func() { close(hung.release) })
	h := newHarness(t, nil, options{tickets: hung, tune: func(c *Config) { c.RPCTimeout = 100 * time.Millisecond }})
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	resp, _ := get(t, h.client(&cert, false), h.url(syncPath), nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "30" {
		t.Fatalf("status %d Retry-After %q, want 503 and 30", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

type countingIdentity struct{ calls atomic.Int64 }

func (c *countingIdentity) MapCertificate(context.Context, []byte, [][]byte) (Identity, error) {
	c.calls.Add(1)
	return Identity{UPN: "alice@lab.test"}, nil
}

func TestIdentityCacheTTL(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	src := &countingIdentity{}
	c := newIdentityCache(src, 15*time.Minute, time.Minute, 2, func() time.Time { return now })
	fp := [32]byte{1}
	for i, want := range []bool{false, true} {
		if _, hit, err := c.lookup(context.Background(), fp, nil, nil); err != nil || hit != want {
			t.Fatalf("lookup %d: hit=%v err=%v, want hit=%v", i, hit, err, want)
		}
	}
	now = now.Add(16 * time.Minute)
	if _, hit, _ := c.lookup(context.Background(), fp, nil, nil); hit {
		t.Fatal("expired mapping served")
	}
	for i := range 5 { // bounded
		_, _, _ = c.lookup(context.Background(), [32]byte{byte(10 + i)}, nil, nil)
	}
	if n := c.len(); n > 2 {
		t.Fatalf("cache holds %d entries, bound is 2", n)
	}
	if src.calls.Load() != 7 {
		t.Fatalf("calls = %d, want 7", src.calls.Load())
	}
}

func TestNothingRequiredPassesThrough(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.KCD, c.RequireClientCertificate, c.Gateway.RevocationEnabled = config.KCD{}, false, false
		c.ClientCertTrustStorePath = ""
	}, options{})
	var got []string
	h.exchange.srv.Config.Handler = httpHandler(func(auth []string) { got = auth })
	rogue := newCA(t, "Rogue CA").issue(t, certOpts{cn: "x"})
	for _, cert := range []*tls.Certificate{nil, &rogue} {
		resp, _ := get(t, h.client(cert, false), h.url("/EWS/Exchange.asmx"), map[string]string{"Authorization": "Basic YTpi"})
		if resp.StatusCode != 200 || len(got) != 1 || got[0] != "Basic YTpi" {
			t.Fatalf("cert=%v: status %d Authorization %q", cert != nil, resp.StatusCode, got)
		}
	}
}

func TestFailureMapping(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
	}{
		{"no certificate", errNoCertificate, 403},
		{"no upstream", errNoUpstream, 503},
		{"short body", fmt.Errorf("%w: %w", errReadBody, io.ErrUnexpectedEOF), 400},
		{"identity down", &IdentityError{Unavailable: true, Err: errors.New("x")}, 503},
		{"identity no user", &IdentityError{Err: errors.New("x")}, 403},
		{"device gone", context.Canceled, 499},
		{"dial refused", &net.OpError{Op: "dial", Err: errors.New("refused")}, 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f := failureOf(tt.err, 30); f.Status != tt.status {
				t.Fatalf("status %d, want %d", f.Status, tt.status)
			}
		})
	}
}

func TestHTTPSUpstreamVerifiedWithExchangeCA(t *testing.T) {
	backend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("tls ok"))
	}))
	t.Cleanup(backend.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: backend.Certificate().Raw})
	for _, tt := range []struct {
		name   string
		ca     []byte
		status int
	}{
		{"trusted", caPEM, 200},
		{"wrong CA", newCA(t, "Other").pem, 502},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *config.Config) {
				c.KCD, c.Gateway.RevocationEnabled = config.KCD{}, false
				c.Segmesh.Edge.ExchangeURLs = []string{backend.URL}
				c.Segmesh.Edge.ExchangeCAFile = writeFile(t, t.TempDir(), "exchange-ca.pem", tt.ca)
			}, options{})
			cert := h.ca.issue(t, certOpts{cn: "alice"})
			if resp, body := get(t, h.client(&cert, false), h.url("/EWS/x"), nil); resp.StatusCode != tt.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, tt.status)
			}
		})
	}
}
