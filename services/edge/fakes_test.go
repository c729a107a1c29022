package edge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/segmesh/segmesh/internal/testlog"
	"github.com/segmesh/segmesh/internal/testpoll"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/negotiate"
	"github.com/segmesh/segmesh/pkg/negotiate/negotiatetest"
	"github.com/segmesh/segmesh/pkg/role"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
	identityv1 "github.com/segmesh/segmesh/proto/segmesh/identity/v1"
	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// --- PKI minted in the test ---

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"segmesh test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          []byte(name),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

type certOpts struct {
	cn        string
	serial    int64
	eku       []x509.ExtKeyUsage
	notBefore time.Time
	notAfter  time.Time
	dns       []string
	ips       []net.IP
}

func (ca *testCA) issue(t testing.TB, o certOpts) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if o.serial == 0 {
		o.serial = time.Now().UnixNano()
	}
	if o.eku == nil {
		o.eku = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(12 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(o.serial),
		Subject:      pkix.Name{CommonName: o.cn},
		NotBefore:    o.notBefore,
		NotAfter:     o.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  o.eku,
		DNSNames:     o.dns,
		IPAddresses:  o.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func keyPEM(t testing.TB, c tls.Certificate) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// --- fake identity role ---

type fakeIdentity struct {
	identityv1.UnimplementedIdentityServiceServer
	calls atomic.Int64
	mu    sync.Mutex
	errs  map[string]error // by CN
}

func (f *fakeIdentity) MapCertificate(_ context.Context, r *identityv1.MapCertificateRequest) (*identityv1.MapCertificateResponse, error) {
	f.calls.Add(1)
	c, err := x509.ParseCertificate(r.GetCertificateDer())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "not a certificate")
	}
	f.mu.Lock()
	e := f.errs[c.Subject.CommonName]
	f.mu.Unlock()
	if e != nil {
		return nil, e
	}
	return &identityv1.MapCertificateResponse{Upn: c.Subject.CommonName + "@lab.test", Realm: "LAB.TEST", Source: identityv1.UPNSource_UPN_SOURCE_CERTIFICATE_SAN}, nil
}

// --- fake ticket role: tickets shaped like the KDC's, keys kept for the fake Exchange ---

type fakeTickets struct {
	ticketv1.UnimplementedTicketServiceServer
	gets        atomic.Int64
	invalidates atomic.Int64
	lifetime    time.Duration
	mu          sync.Mutex
	errs        map[string]error  // by UPN
	keys        map[string]string // ticket cipher (hex) → session key, for the fake Exchange
	unavailable bool
	spns        []string // the target SPNs asked, in order
}

func newFakeTickets() *fakeTickets {
	return &fakeTickets{errs: map[string]error{}, keys: map[string]string{}, lifetime: 10 * time.Hour}
}

func (f *fakeTickets) setUnavailable(v bool) { f.mu.Lock(); f.unavailable = v; f.mu.Unlock() }

func (f *fakeTickets) GetServiceTicket(_ context.Context, r *ticketv1.GetServiceTicketRequest) (*ticketv1.GetServiceTicketResponse, error) {
	f.gets.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spns = append(f.spns, r.GetTargetSpn())
	if f.unavailable {
		return nil, status.Error(codes.Unavailable, "KDC unreachable: dial tcp dc1.lab.test:88: connection refused")
	}
	if e := f.errs[r.GetUserPrincipal()]; e != nil {
		return nil, e
	}
	cipher := make([]byte, 48)
	key := make([]byte, 32)
	_, _ = rand.Read(cipher)
	_, _ = rand.Read(key)
	tkt := messages.Ticket{
		TktVNO:  5,
		Realm:   "LAB.TEST",
		SName:   types.PrincipalName{NameType: 2, NameString: strings.Split(r.GetTargetSpn(), "/")},
		EncPart: types.EncryptedData{EType: 18, KVNO: 2, Cipher: cipher},
	}
	der, err := tkt.Marshal()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	f.keys[string(cipher)] = string(key)
	now := time.Now()
	return &ticketv1.GetServiceTicketResponse{
		TicketDer: der, SessionKey: key, SessionKeyEtype: 18,
		ClientName: r.GetUserPrincipal(), ClientNameType: 10, ClientRealm: "LAB.TEST", Realm: "LAB.TEST",
		StartTime: timestamppb.New(now), EndTime: timestamppb.New(now.Add(f.lifetime)),
	}, nil
}

func (f *fakeTickets) Invalidate(context.Context, *ticketv1.InvalidateRequest) (*ticketv1.InvalidateResponse, error) {
	f.invalidates.Add(1)
	return &ticketv1.InvalidateResponse{Removed: 1}, nil
}

func kdcError(code codes.Code, krb int32, name, hint string) error {
	st, err := status.New(code, name).WithDetails(&ticketv1.KDCErrorDetail{Code: krb, Name: name, Stage: "s4u2self", Hint: hint, Realm: "LAB.TEST"})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

// --- fake crl role ---

type fakeCRL struct {
	crlv1.UnimplementedRevocationServiceServer
	mu      sync.Mutex
	current *crlv1.WatchSnapshotsResponse
	changed chan struct{}
}

func newFakeCRL() *fakeCRL {
	return &fakeCRL{current: &crlv1.WatchSnapshotsResponse{Version: 1}, changed: make(chan struct{})}
}

// revoke publishes a new snapshot in which ca revoked the serials.
func (f *fakeCRL) revoke(ca *testCA, serials ...int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ic := &crlv1.IssuerCRL{Issuer: ca.cert.Subject.String(), SourceUrl: "http://crl.lab.test/ca.crl"}
	k := crl.KeyOf(ca.cert.RawSubject, ca.cert.SubjectKeyId)
	ic.IssuerKey = k[:]
	for _, s := range serials {
		ic.RevokedSerials = append(ic.RevokedSerials, big.NewInt(s).Bytes())
	}
	f.current = &crlv1.WatchSnapshotsResponse{Version: f.current.GetVersion() + 1, Crls: []*crlv1.IssuerCRL{ic}}
	close(f.changed)
	f.changed = make(chan struct{})
}

// WatchSnapshots answers as the crl role's (services/crl server.go): the
// response headers at once, the current snapshot unless the caller holds
// its version (known_version), then every new one.
func (f *fakeCRL) WatchSnapshots(req *crlv1.WatchSnapshotsRequest, st grpc.ServerStreamingServer[crlv1.WatchSnapshotsResponse]) error {
	if err := st.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	known := req.GetKnownVersion()
	for {
		f.mu.Lock()
		cur, ch := f.current, f.changed
		f.mu.Unlock()
		if cur.GetVersion() != known {
			known = 0
			if err := st.Send(cur); err != nil {
				return err
			}
		}
		select {
		case <-ch:
		case <-st.Context().Done():
			return nil
		}
	}
}

// --- gRPC plumbing: real servers on loopback ---

type testConns map[string]*grpc.ClientConn

func (c testConns) Conn(name string) (grpc.ClientConnInterface, error) {
	cc, ok := c[name]
	if !ok {
		return nil, fmt.Errorf("no %s role in the test", name)
	}
	return cc, nil
}

func serveGRPC(t testing.TB, register func(*grpc.Server)) *grpc.ClientConn {
	_, cc := startGRPC(t, register)
	return cc
}

// startGRPC is serveGRPC that also returns the server, for a test that
// stops it (a role gone).
func startGRPC(t testing.TB, register func(*grpc.Server)) (*grpc.Server, *grpc.ClientConn) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	register(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return srv, cc
}

// --- fake Exchange: checks what reaches it the way Exchange would ---

type fakeExchange struct {
	t       testing.TB
	tickets *fakeTickets
	srv     *httptest.Server
	mu      sync.Mutex
	seen    map[string]bool // authenticator replay cache
	// handler, when set, answers after the authentication checks.
	handler func(w http.ResponseWriter, r *http.Request, user string)
	// reject401 answers 401 to the next n authenticated requests.
	reject401 atomic.Int64
	requests  atomic.Int64
	badAuth   atomic.Int64
	// ep is the Extended Protection setting; presented returns the
	// certificate the server showed on a request's connection (TLS fakes,
	// kcd_binding_test.go).
	ep        negotiatetest.ExtendedProtection
	presented func(r *http.Request) *x509.Certificate
	// the last authenticated request's session key and authenticator time
	// (under mu), for a mutual-authentication reply (strip_test.go).
	lastKey   types.EncryptionKey
	lastTime  time.Time
	lastCusec int
}

func newFakeExchange(t testing.TB, tickets *fakeTickets) *fakeExchange {
	fx := &fakeExchange{t: t, tickets: tickets, seen: map[string]bool{}}
	fx.srv = httptest.NewServer(http.HandlerFunc(fx.serve))
	t.Cleanup(fx.srv.Close)
	return fx
}

// authenticate checks there is exactly one Authorization header, that it is
// a Negotiate token whose authenticator decrypts with the ticket's session
// key and has not been seen before; it returns the client name.
func (fx *fakeExchange) authenticate(r *http.Request) (string, error) {
	vals := r.Header.Values("Authorization")
	if len(vals) != 1 {
		return "", fmt.Errorf("%d Authorization headers", len(vals))
	}
	b64, ok := strings.CutPrefix(vals[0], "Negotiate ")
	if !ok {
		return "", fmt.Errorf("Authorization is not Negotiate: %.10q", vals[0])
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", err
	}
	var tok spnego.SPNEGOToken
	if err := tok.Unmarshal(raw); err != nil {
		return "", fmt.Errorf("SPNEGO: %w", err)
	}
	var k5 spnego.KRB5Token
	if err := k5.Unmarshal(tok.NegTokenInit.MechTokenBytes); err != nil {
		return "", fmt.Errorf("KRB5 token: %w", err)
	}
	fx.tickets.mu.Lock()
	key, ok := fx.tickets.keys[string(k5.APReq.Ticket.EncPart.Cipher)]
	fx.tickets.mu.Unlock()
	if !ok {
		return "", errors.New("ticket not issued by the ticket role")
	}
	if err := k5.APReq.DecryptAuthenticator(types.EncryptionKey{KeyType: 18, KeyValue: []byte(key)}); err != nil {
		return "", fmt.Errorf("authenticator: %w", err)
	}
	a := k5.APReq.Authenticator
	id := fmt.Sprintf("%s/%d/%d", a.CTime, a.Cusec, a.SeqNumber)
	fx.mu.Lock()
	fx.lastKey, fx.lastTime, fx.lastCusec = types.EncryptionKey{KeyType: 18, KeyValue: []byte(key)}, a.CTime, a.Cusec
	replay := fx.seen[id]
	fx.seen[id] = true
	fx.mu.Unlock()
	if replay {
		return "", errors.New("replayed authenticator")
	}
	if fx.ep != negotiatetest.Off {
		var got negotiate.Binding
		if len(a.Cksum.Checksum) >= 20 {
			copy(got[:], a.Cksum.Checksum[4:20])
		}
		if err := negotiatetest.CheckBinding(got, fx.presented(r), fx.ep); err != nil {
			return "", err
		}
	}
	return strings.Join(a.CName.NameString, "/") + "@" + a.CRealm, nil
}

func (fx *fakeExchange) serve(w http.ResponseWriter, r *http.Request) {
	fx.requests.Add(1)
	user, err := fx.authenticate(r)
	if err != nil {
		fx.badAuth.Add(1)
		w.Header().Set("WWW-Authenticate", "Negotiate")
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if fx.reject401.Load() > 0 {
		fx.reject401.Add(-1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("WWW-Authenticate", "Negotiate")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if fx.handler != nil {
		fx.handler(w, r, user)
		return
	}
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("MS-Server-ActiveSync", "15.1")
	fmt.Fprintf(w, "user=%s xff=%s proto=%s body=%d", user, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"), len(body))
}

// --- the edge under test ---

type harness struct {
	t        testing.TB
	dir      string
	ca       *testCA
	serverCA *testCA
	edge     *Service
	idm      *fakeIdentity
	tickets  *fakeTickets
	crl      *fakeCRL
	exchange *fakeExchange
	logs     *syncBuffer
	cfg      *config.Config
}

type syncBuffer = testlog.Buffer

// newHarness starts an edge with KCD, Require Client Certificate and
// revocation on, fake roles over real gRPC, and a fake Exchange.
func newHarness(t testing.TB, mutate func(*config.Config), o options) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), ca: newCA(t, "Device CA"), serverCA: newCA(t, "Server CA"),
		idm: &fakeIdentity{errs: map[string]error{}}, tickets: newFakeTickets(), crl: newFakeCRL(), logs: &syncBuffer{}}
	h.exchange = newFakeExchange(t, h.tickets)
	srvCert := h.serverCA.issue(t, certOpts{cn: "edge.lab.test", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		dns: []string{"edge.lab.test"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}})
	c := config.Default()
	c.BaseDir = h.dir
	c.ClientCertTrustStorePath = filepath.Base(writeFile(t, h.dir, "device-ca.pem", h.ca.pem))
	c.RequireClientCertificate = true
	c.KCD = config.KCD{Enabled: true, TargetSPN: "HTTP/mail.lab.test"}
	c.Gateway.RevocationEnabled = true
	c.Segmesh.Edge.Listen = "127.0.0.1:0"
	c.Segmesh.Edge.ServerCertFile = writeFile(t, h.dir, "edge.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvCert.Certificate[0]}))
	c.Segmesh.Edge.ServerKeyFile = writeFile(t, h.dir, "edge.key", keyPEM(t, srvCert))
	c.Segmesh.Edge.ExchangeURLs = []string{h.exchange.srv.URL}
	// SEGMESH_TEST_HTTP1_ENGINE=net/http runs every edge test with the
	// engine before the relay (httputil.ReverseProxy); unset, the default
	// (the relay, engine_relay.go).
	c.Segmesh.Edge.HTTP1Engine = os.Getenv("SEGMESH_TEST_HTTP1_ENGINE")
	if mutate != nil {
		mutate(&c)
	}
	h.cfg = &c
	conns := testConns{
		role.Identity: serveGRPC(t, func(s *grpc.Server) { identityv1.RegisterIdentityServiceServer(s, h.idm) }),
		role.Ticket:   serveGRPC(t, func(s *grpc.Server) { ticketv1.RegisterTicketServiceServer(s, h.tickets) }),
		role.CRL:      serveGRPC(t, func(s *grpc.Server) { crlv1.RegisterRevocationServiceServer(s, h.crl) }),
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := newService(role.Deps{Config: &c, Logger: log, Conns: conns}, o)
	if err != nil {
		t.Fatal(err)
	}
	startStopped(t, svc)
	h.edge = svc
	return h
}

// startStopped starts r (the edge, or a group of roles) and stops it when
// the test ends.
func startStopped(t testing.TB, r interface {
	Start(context.Context) error
	Stop(context.Context) error
}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Stop(ctx)
	})
}

// client returns an HTTP client presenting cert (none when nil).
func (h *harness) client(cert *tls.Certificate, h2 bool) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(h.serverCA.cert)
	tc := &tls.Config{RootCAs: pool, ServerName: "edge.lab.test"}
	if cert != nil {
		// Offer the certificate whatever CA names the CertificateRequest
		// lists (Go's client would otherwise keep back one from another CA),
		// so the edge's own verification is what these tests exercise.
		c := *cert
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: h2, MaxIdleConnsPerHost: 16}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	h.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func (h *harness) url(path string) string { return "https://" + h.edge.Addr().String() + path }

// waitFor polls cond until it holds, failing t after 5 s (testpoll.Until).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testpoll.Until(t, 5*time.Second, what, cond)
}

// httpHandler records the Authorization headers of each request.
func httpHandler(record func([]string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { record(r.Header.Values("Authorization")) })
}
