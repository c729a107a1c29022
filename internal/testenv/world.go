package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/goidentity/v6"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
)

// The site every Env serves.
const (
	// Realm is the one Kerberos realm (the KCD domain).
	Realm = "TEST.REALM"
	// SPN is Exchange's service principal, the KCD target.
	SPN = "HTTP/exchange.test.realm"
	// ServiceAccount is the KCD service account's name.
	ServiceAccount = "svc_seg"
	// ServicePassword is its password; never in a log or an answer.
	ServicePassword = "Svc-Pass-testenv-7c1!"
	// baseDN is the directory's naming context.
	baseDN = "DC=test,DC=realm"
)

// world holds the fakes one Env runs against.
type world struct {
	ca, rogue *testpki.Cert
	kdc       *kdctest.KDC
	ldap      *ldaptest.Server
	cdp       *httptest.Server
	exchange  *Exchange
	revoked   []testpki.Revoked
	// partRevoked are the serials each partition's CRL lists (partition.go).
	partRevoked map[string][]testpki.Revoked
	mu          sync.Mutex
	nextSerial  int64
	serverCA    *testpki.Cert
}

// newWorld starts the KDC, the directory, the CDP and Exchange.
func newWorld(t testing.TB) *world {
	t.Helper()
	now := time.Now()
	w := &world{
		ca:         testpki.NewCA(t, "testenv Device CA", testpki.At(now)),
		rogue:      testpki.NewCA(t, "testenv Rogue CA", testpki.At(now)),
		serverCA:   testpki.NewCA(t, "testenv Server CA", testpki.At(now)),
		nextSerial: 1000,
	}
	w.kdc = kdctest.Start(t, kdctest.Config{
		Realm: Realm, Service: ServiceAccount, ServicePassword: ServicePassword,
		ServiceSPNs: []string{"HTTP/seg.test.realm"},
		Users:       []string{"alice", "bob", "carol", "dave", "eve", "frank"},
		UPNs: map[string]string{"alice@test.realm": "alice", "bob@test.realm": "bob", "carol@test.realm": "carol",
			"dave@test.realm": "dave", "eve@test.realm": "eve", "frank@test.realm": "frank"},
		Sensitive:  []string{"eve"},
		DelegateTo: []string{SPN},
		Targets:    map[string]string{SPN: "Exch-Pass-testenv-1!"},
	})
	w.ldap = ldaptest.New(t, ldaptest.Options{RootDSE: map[string]string{"defaultNamingContext": baseDN}})
	w.ldap.AddBind("CN="+ServiceAccount+",CN=Users,"+baseDN, ServicePassword)
	w.ldap.Add(ldaptest.Entry{DN: baseDN, Attrs: map[string][][]byte{"objectClass": {[]byte("top"), []byte("domain")}}})
	w.cdp = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if b, ok := w.partitionCRL(t, r.URL.Path); ok {
			_, _ = rw.Write(b)
			return
		}
		w.mu.Lock()
		revoked := append([]testpki.Revoked(nil), w.revoked...)
		w.mu.Unlock()
		_, _ = rw.Write(w.ca.CRL(t, testpki.CRLOptions{Number: int64(len(revoked) + 1), ThisUpdate: time.Now().Add(-time.Minute), Revoked: revoked}))
	}))
	t.Cleanup(w.cdp.Close)
	w.exchange = startExchange(t, w)
	return w
}

// serial returns a fresh certificate serial number.
func (w *world) serial() *big.Int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nextSerial++
	return big.NewInt(w.nextSerial)
}

// Exchange is the Exchange stand-in: it verifies every Negotiate header
// with the target SPN's keytab and answers "user=<name>@<realm>", holds a
// request for ?hold=<ms> like an ActiveSync Ping, and answers 401 to the
// next Fail401 requests of a user.
type Exchange struct {
	srv     *httptest.Server
	caPEM   []byte
	served  atomic.Int64
	started atomic.Int64 // authenticated requests that reached the handler
	mu      sync.Mutex
	fail401 map[string]int // user (cname@REALM) → 401s still to give
	noAuth  atomic.Int64   // requests that arrived without Negotiate
}

// startExchange starts the stand-in with TLS on loopback.
func startExchange(t testing.TB, w *world) *Exchange {
	t.Helper()
	kt, err := w.kdc.Keytab(SPN)
	if err != nil {
		t.Fatal(err)
	}
	x := &Exchange{fail401: map[string]int{}}
	inner := http.HandlerFunc(x.serve)
	auth := spnego.SPNEGOKRB5Authenticate(inner, kt, service.KeytabPrincipal(SPN), service.Logger(log.New(io.Discard, "", 0)))
	x.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Negotiate ") {
			x.noAuth.Add(1)
			rw.Header().Set("WWW-Authenticate", "Negotiate")
			http.Error(rw, "Negotiate required", http.StatusUnauthorized)
			return
		}
		auth.ServeHTTP(rw, r)
	}))
	srvCert := w.serverCA.Server(t, []string{"127.0.0.1"})
	x.srv.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert.TLS()}}
	x.srv.StartTLS()
	t.Cleanup(x.srv.Close)
	x.caPEM = w.serverCA.PEM()
	return x
}

// Fail401 makes the next n requests of user (as the ticket names it:
// alice@test.realm@TEST.REALM for an enterprise name) get 401 after a
// verified Negotiate header, as Exchange does when it refuses a ticket.
func (x *Exchange) Fail401(user string, n int) {
	x.mu.Lock()
	x.fail401[user] = n
	x.mu.Unlock()
}

// Pending401 returns how many 401s user still has to get (Fail401).
func (x *Exchange) Pending401(user string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.fail401[user]
}

// Started returns how many authenticated requests reached Exchange's handler.
func (x *Exchange) Started() int64 { return x.started.Load() }

// Served returns how many requests Exchange answered for an authenticated user.
func (x *Exchange) Served() int64 { return x.served.Load() }

// WithoutNegotiate returns how many requests arrived with no Negotiate header.
func (x *Exchange) WithoutNegotiate() int64 { return x.noAuth.Load() }

func (x *Exchange) serve(rw http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	id := goidentity.FromHTTPRequestContext(r)
	if id == nil {
		http.Error(rw, "no identity", http.StatusUnauthorized)
		return
	}
	user := id.UserName() + "@" + id.Domain()
	x.started.Add(1)
	x.mu.Lock()
	n := x.fail401[user]
	if n > 0 {
		x.fail401[user] = n - 1
	}
	x.mu.Unlock()
	if n > 0 {
		rw.Header().Set("WWW-Authenticate", "Negotiate")
		http.Error(rw, "ticket refused", http.StatusUnauthorized)
		return
	}
	if s := r.URL.Query().Get("hold"); s != "" {
		ms, err := strconv.Atoi(s)
		if err != nil || ms < 0 || ms > 60_000 {
			http.Error(rw, "bad hold", http.StatusBadRequest)
			return
		}
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	x.served.Add(1)
	rw.Header().Set("Content-Type", "application/vnd.ms-sync.wbxml")
	rw.Header().Set("MS-Server-ActiveSync", "15.1")
	_, _ = fmt.Fprintf(rw, "user=%s\n", user)
}

// Device is a device certificate and what the site knows of its user.
type Device struct {
	// Name is the account name (alice).
	Name string
	// Cert is the certificate and key the device presents.
	Cert tls.Certificate
	// Leaf is the parsed certificate.
	Leaf *x509.Certificate
}

// device mints a device certificate: from the site's CA (or the rogue CA
// when untrusted), with the SAN UPN upnSAN (none when empty).
func (w *world) device(t testing.TB, name, upnSAN string, untrusted bool) Device {
	t.Helper()
	ca := w.ca
	if untrusted {
		ca = w.rogue
	}
	opts := []testpki.Option{testpki.Serial(w.serial()), testpki.Subject(pkix.Name{CommonName: name, Organization: []string{"testenv"}})}
	if upnSAN != "" {
		opts = append(opts, testpki.UPN(upnSAN))
	}
	c := ca.Device(t, name, opts...)
	return Device{Name: name, Cert: c.TLS(), Leaf: c.Cert}
}
