package edge

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
	identityv1 "github.com/segmesh/segmesh/proto/segmesh/identity/v1"
	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// newTicketKey returns a random session ticket key.
func newTicketKey(t testing.TB) [ticketKeySize]byte {
	t.Helper()
	var k [ticketKeySize]byte
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	return k
}

// writeTicketKeys writes keys, first to last, to path with mode 0600.
func writeTicketKeys(t testing.TB, path string, keys ...[ticketKeySize]byte) string {
	t.Helper()
	var b []byte
	for _, k := range keys {
		b = append(b, k[:]...)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// withTicketKeys sets the shared key file of an edge's configuration.
func withTicketKeys(path string) func(*config.Config) {
	return func(c *config.Config) { c.Segmesh.Edge.TLSSessionTicketKeyFile = path }
}

// anotherEdge starts a second edge beside h's: the same fake roles (so the
// same identities and CRL snapshots), h's configuration with mutate
// applied; it is stopped when the test ends.
func (h *harness) anotherEdge(t testing.TB, mutate func(*config.Config)) *Service {
	t.Helper()
	c := *h.cfg
	c.Segmesh.Edge.Paths = append([]string(nil), h.cfg.Segmesh.Edge.Paths...)
	if mutate != nil {
		mutate(&c)
	}
	conns := testConns{
		role.Identity: serveGRPC(t, func(s *grpc.Server) { identityv1.RegisterIdentityServiceServer(s, h.idm) }),
		role.Ticket:   serveGRPC(t, func(s *grpc.Server) { ticketv1.RegisterTicketServiceServer(s, h.tickets) }),
		role.CRL:      serveGRPC(t, func(s *grpc.Server) { crlv1.RegisterRevocationServiceServer(s, h.crl) }),
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := newService(role.Deps{Config: &c, Logger: log, Conns: conns}, options{})
	if err != nil {
		t.Fatal(err)
	}
	startStopped(t, svc)
	return svc
}

// phone is a device that keeps its TLS sessions, as iOS and Android do.
type phone struct {
	t     testing.TB
	h     *harness
	cert  tls.Certificate
	cache tls.ClientSessionCache
	max   uint16 // the highest TLS version it offers
}

func (h *harness) phone(t testing.TB, cert tls.Certificate, maxVersion uint16) *phone {
	return &phone{t: t, h: h, cert: cert, cache: tls.NewLRUClientSessionCache(8), max: maxVersion}
}

// sync connects to edge (a new connection, resuming when the phone holds a
// ticket it may use), sends one Sync and returns whether the handshake
// resumed and the answer's status and body. err is the handshake's or the
// request's failure: a refused certificate shows here.
func (p *phone) sync(edge *Service) (resumed bool, status int, body string, err error) {
	p.t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(p.h.serverCA.cert)
	cert := p.cert
	c, err := tls.Dial("tcp", edge.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "edge.lab.test",
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
		ClientSessionCache:   p.cache, MaxVersion: p.max, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return false, 0, "", err
	}
	defer c.Close()
	resumed = c.ConnectionState().DidResume
	req, _ := http.NewRequest(http.MethodGet, "https://edge.lab.test"+syncPath, nil)
	req.Close = true
	if err := req.Write(c); err != nil {
		return resumed, 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return resumed, 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resumed, resp.StatusCode, string(b), err
}

// mustSync is sync that wants a 200 for user, and returns whether it resumed.
func (p *phone) mustSync(edge *Service, user string) bool {
	p.t.Helper()
	resumed, status, body, err := p.sync(edge)
	if err != nil || status != http.StatusOK {
		p.t.Fatalf("Sync: status %d, %v: %s", status, err, body)
	}
	if !strings.Contains(body, "user="+user+"@") {
		p.t.Fatalf("Sync answered as %q, want user %s", body, user)
	}
	return resumed
}

var tlsVersions = []struct {
	name string
	max  uint16
}{{"TLS1.3", tls.VersionTLS13}, {"TLS1.2", tls.VersionTLS12}}

// TestSharedTicketKeysResumeOnAnotherEdge: with the same key file two
// edges resume each other's sessions, and the resumed session carries the
// device's certificate (the request is alice's). Without it (per-process
// keys) the second edge does a full handshake: the control that shows
// the test can fail.
func TestSharedTicketKeysResumeOnAnotherEdge(t *testing.T) {
	for _, v := range tlsVersions {
		t.Run(v.name, func(t *testing.T) {
			keys := writeTicketKeys(t, filepath.Join(t.TempDir(), "tickets.key"), newTicketKey(t), newTicketKey(t))
			h := newHarness(t, withTicketKeys(keys), options{})
			shared := h.anotherEdge(t, nil)
			own := h.anotherEdge(t, withTicketKeys(""))
			alice := h.phone(t, h.ca.issue(t, certOpts{cn: "alice"}), v.max)
			if alice.mustSync(h.edge, "alice") {
				t.Fatal("the first connection resumed")
			}
			if !alice.mustSync(shared, "alice") {
				t.Fatal("the edge sharing the key file did not resume the other edge's session")
			}
			if alice.mustSync(own, "alice") {
				t.Fatal("an edge with its own keys resumed another edge's session")
			}
			if r, f := shared.sessions.resumed.Load(), shared.sessions.full.Load(); r != 1 || f != 0 {
				t.Fatalf("second edge counted %d resumed, %d full; want 1, 0", r, f)
			}
			if r, f := own.sessions.resumed.Load(), own.sessions.full.Load(); r != 0 || f != 1 {
				t.Fatalf("edge with its own keys counted %d resumed, %d full; want 0, 1", r, f)
			}
		})
	}
}

// TestResumedSessionIsTheTicketsUser: a resumed session is the user whose
// certificate the ticket carries, never another's: alice and bob resume
// across two edges at once and each answer is their own; and a client
// configured with bob's certificate that resumes alice's session (it holds
// alice's ticket and secret) is alice, not bob: the certificate a resumed
// connection is judged by is the ticket's, as crypto/tls restores it.
func TestResumedSessionIsTheTicketsUser(t *testing.T) {
	keys := writeTicketKeys(t, filepath.Join(t.TempDir(), "tickets.key"), newTicketKey(t))
	h := newHarness(t, withTicketKeys(keys), options{})
	other := h.anotherEdge(t, nil)
	aliceCert, bobCert := h.ca.issue(t, certOpts{cn: "alice"}), h.ca.issue(t, certOpts{cn: "bob"})
	alice, bob := h.phone(t, aliceCert, tls.VersionTLS13), h.phone(t, bobCert, tls.VersionTLS13)
	alice.mustSync(h.edge, "alice")
	bob.mustSync(h.edge, "bob")
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		for _, p := range []struct {
			ph   *phone
			user string
		}{{alice, "alice"}, {bob, "bob"}} {
			wg.Go(func() {
				edge := []*Service{h.edge, other}[i%2]
				_, status, body, err := p.ph.sync(edge)
				if err != nil || status != http.StatusOK || !strings.Contains(body, "user="+p.user+"@") {
					errs <- fmt.Errorf("%s: status %d, %v: %q", p.user, status, err, body)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if other.sessions.resumed.Load() == 0 {
		t.Fatal("no session resumed on the second edge; the test would prove nothing")
	}
	// bob's certificate, alice's session cache.
	thief := &phone{t: t, h: h, cert: bobCert, cache: alice.cache, max: tls.VersionTLS13}
	if !thief.mustSync(other, "alice") {
		t.Fatal("did not resume alice's session; the test would prove nothing")
	}
}

// TestResumptionReverifiesTheCertificate: a resumed session is judged by
// the trust and CRLs of the moment at the edge it reaches: a certificate
// revoked after the ticket was issued is refused on resumption (and a
// resumed connection open at the revocation gets 403 on its next
// request); a ticket taken to an edge that does not trust the device's CA
// is refused there; and a CA removed from an edge's trust after the
// ticket refuses its sessions.
func TestResumptionReverifiesTheCertificate(t *testing.T) {
	for _, v := range tlsVersions {
		t.Run(v.name+"/revoked", func(t *testing.T) {
			keys := writeTicketKeys(t, filepath.Join(t.TempDir(), "tickets.key"), newTicketKey(t))
			h := newHarness(t, withTicketKeys(keys), options{})
			other := h.anotherEdge(t, nil)
			alice := h.phone(t, h.ca.issue(t, certOpts{cn: "alice", serial: 0xa11ce}), v.max)
			alice.mustSync(h.edge, "alice")
			// A resumed connection kept open across the revocation.
			open := h.client(&alice.cert, false)
			tc := open.Transport.(*http.Transport).TLSClientConfig
			tc.ClientSessionCache, tc.MaxVersion = alice.cache, v.max
			if resp, body := get(t, open, "https://"+other.Addr().String()+syncPath, nil); resp.StatusCode != 200 || resp.TLS == nil || !resp.TLS.DidResume {
				t.Fatalf("resumed Sync on the second edge: %d %s (resumed %v)", resp.StatusCode, body, resp.TLS != nil && resp.TLS.DidResume)
			}
			genOther, genFirst := other.revocation.current(), h.edge.revocation.current()
			h.crl.revoke(h.ca, 0xa11ce)
			waitFor(t, "new snapshot at both edges", func() bool {
				return other.revocation.current() > genOther && h.edge.revocation.current() > genFirst
			})
			if resp, _ := get(t, open, "https://"+other.Addr().String()+syncPath, nil); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("resumed connection after the revocation: status %d, want 403", resp.StatusCode)
			}
			for _, e := range []*Service{other, h.edge} {
				if resumed, status, _, err := alice.sync(e); err == nil {
					t.Fatalf("revoked certificate accepted on a new connection: status %d, resumed %v", status, resumed)
				}
			}
			if !strings.Contains(h.logs.String(), "serial=a11ce") {
				t.Fatal("refusal not logged with the serial")
			}
		})
		t.Run(v.name+"/other trust", func(t *testing.T) {
			keys := writeTicketKeys(t, filepath.Join(t.TempDir(), "tickets.key"), newTicketKey(t))
			h := newHarness(t, withTicketKeys(keys), options{})
			otherCA := newCA(t, "Other Device CA")
			strict := h.anotherEdge(t, func(c *config.Config) {
				c.ClientCertTrustStorePath = writeFile(t, t.TempDir(), "other-ca.pem", otherCA.pem)
			})
			alice := h.phone(t, h.ca.issue(t, certOpts{cn: "alice"}), v.max)
			alice.mustSync(h.edge, "alice")
			if resumed, status, _, err := alice.sync(strict); err == nil {
				t.Fatalf("an edge not trusting the device's CA accepted a session from another edge: status %d, resumed %v", status, resumed)
			}
			if !strings.Contains(h.logs.String(), "reason=untrusted") {
				t.Fatal("refusal not logged as untrusted")
			}
		})
		t.Run(v.name+"/CA removed", func(t *testing.T) {
			keys := writeTicketKeys(t, filepath.Join(t.TempDir(), "tickets.key"), newTicketKey(t))
			h := newHarness(t, withTicketKeys(keys), options{})
			alice := h.phone(t, h.ca.issue(t, certOpts{cn: "alice"}), v.max)
			alice.mustSync(h.edge, "alice")
			if !alice.mustSync(h.edge, "alice") {
				t.Fatal("did not resume before the CA was removed; the test would prove nothing")
			}
			writeFile(t, h.dir, "device-ca.pem", newCA(t, "New Device CA").pem)
			if err := h.edge.reloader.Reload(); err != nil {
				t.Fatal(err)
			}
			if resumed, status, _, err := alice.sync(h.edge); err == nil {
				t.Fatalf("session of a removed CA's certificate accepted: status %d, resumed %v", status, resumed)
			}
		})
	}
}

// TestTicketOfARemovedKeyDoesNotResume: the key file rotated on reload.
// A key kept behind the new one still decrypts (rotation by prepending);
// a ticket of a key no longer in the file is not accepted: the device
// does a full handshake (and its certificate is verified as at first).
func TestTicketOfARemovedKeyDoesNotResume(t *testing.T) {
	for _, v := range tlsVersions {
		t.Run(v.name, func(t *testing.T) {
			k1, k2, k3 := newTicketKey(t), newTicketKey(t), newTicketKey(t)
			keys := writeTicketKeys(t, filepath.Join(t.TempDir(), "tickets.key"), k1)
			h := newHarness(t, withTicketKeys(keys), options{})
			reload := func(ks ...[ticketKeySize]byte) {
				t.Helper()
				writeTicketKeys(t, keys, ks...)
				commit, err := h.edge.PrepareConfig(context.Background(), h.cfg)
				if err != nil {
					t.Fatal(err)
				}
				commit()
			}
			alice := h.phone(t, h.ca.issue(t, certOpts{cn: "alice"}), v.max)
			alice.mustSync(h.edge, "alice") // a ticket under k1
			reload(k2, k1)
			if !alice.mustSync(h.edge, "alice") {
				t.Fatal("a ticket of the key behind the new one did not resume")
			}
			// The resumption above issued a ticket under k2 (TLS 1.3; TLS
			// 1.2 keeps the k1 ticket). Drop both: no ticket decrypts.
			reload(k3)
			if alice.mustSync(h.edge, "alice") {
				t.Fatal("a ticket of a key removed from the file resumed")
			}
		})
	}
}
