package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/internal/testpoll"
)

// The attacks in this file are the reviewer's: each is something an
// attacker tries against the whole site, in both shapes, and must fail.

// attackClient is a client presenting d (always, whatever CA names the
// edge lists) with its own TLS session cache
// (resumption) and keep-alive; h2 selects HTTP/2.
func (e *Env) attackClient(d Device, cache tls.ClientSessionCache, h2 bool) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(e.w.serverCA.Cert)
	tc := &tls.Config{RootCAs: pool, ServerName: "seg.test.realm", MinVersion: tls.VersionTLS12,
		ClientSessionCache: cache,
		// Offer the certificate whatever CA names the server lists, as an
		// attacker's client does.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &d.Cert, nil }}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// attempt is one request's outcome: status (0 for a transport error),
// whether it reused a kept-alive connection, resumed a TLS session, and
// which protocol it spoke.
type attempt struct {
	code            int
	body            string
	reused, resumed bool
	proto           string
}

func sendEAS(c *http.Client, u string, hdr http.Header) attempt {
	var a attempt
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader("<Sync/>"))
	if err != nil {
		return attempt{body: err.Error()}
	}
	req.Header.Set("Content-Type", "application/vnd.ms-sync.wbxml")
	for k, v := range hdr {
		req.Header[k] = v
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { a.reused = i.Reused },
	}))
	resp, err := c.Do(req)
	if err != nil {
		a.body = err.Error()
		return a
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a.code, a.body, a.proto = resp.StatusCode, string(b), resp.Proto
	if resp.TLS != nil {
		a.resumed = resp.TLS.DidResume
	}
	return a
}

// TestAttackRevokedCertificateOnLongLivedConnections: a device whose
// certificate is revoked keeps what it opened before the revocation: a
// kept-alive HTTP/1.1 connection, an HTTP/2 connection and a TLS session
// ticket to resume. None of them may still be served once the CRL lists it.
func TestAttackRevokedCertificateOnLongLivedConnections(t *testing.T) {
	for _, mode := range Modes {
		t.Run(string(mode), func(t *testing.T) {
			e := Start(t, mode)
			d := e.Device("dave", "dave@test.realm")
			want := "user=dave@test.realm@TEST.REALM\n"
			cache := tls.NewLRUClientSessionCache(8)
			keep := e.attackClient(d, cache, false)
			h2 := e.attackClient(d, nil, true)
			u := e.easURL("Sync", "dave", "DAVE1")
			if a := sendEAS(keep, u, nil); a.code != http.StatusOK || a.body != want {
				t.Fatalf("keep-alive before revocation: %+v", a)
			}
			if a := sendEAS(h2, u, nil); a.code != http.StatusOK || a.proto != "HTTP/2.0" {
				t.Fatalf("HTTP/2 before revocation: %+v", a)
			}
			// The session cache holds a ticket the edge accepts: resumption works.
			if a := sendEAS(e.attackClient(d, cache, false), u, nil); a.code != http.StatusOK || !a.resumed {
				t.Fatalf("resumed before revocation: %+v (want 200 on a resumed session)", a)
			}
			e.Revoke(d)
			// Wait until a fresh connection is refused: the CRL is in.
			if !testpoll.Within(20*time.Second, func() bool { return sendEAS(e.Client(d), u, nil).code != http.StatusOK }) {
				t.Fatal("a new connection with the revoked certificate is still served after 20 s")
			}
			before := e.Exchange.Started()
			if a := sendEAS(keep, u, nil); a.code == http.StatusOK || !a.reused {
				t.Errorf("kept-alive connection after revocation: %+v (want refused on the reused connection)", a)
			}
			if a := sendEAS(h2, u, nil); a.code == http.StatusOK {
				t.Errorf("HTTP/2 connection after revocation: %+v", a)
			}
			if a := sendEAS(e.attackClient(d, cache, false), u, nil); a.code == http.StatusOK {
				t.Errorf("resumed TLS session after revocation: %+v", a)
			}
			if e.Exchange.Started() != before {
				t.Error("a request with the revoked certificate reached Exchange")
			}
		})
	}
}

// TestAttackDeviceAuthorizationNeverForwarded: a device sends its own
// Authorization: Negotiate (a token it got for someone else, or garbage).
// Served users must reach Exchange as the certificate's user; when the edge
// has no ticket (a sensitive user) the device's header must not go through.
func TestAttackDeviceAuthorizationNeverForwarded(t *testing.T) {
	for _, mode := range Modes {
		t.Run(string(mode), func(t *testing.T) {
			e := Start(t, mode)
			forged := http.Header{"Authorization": {"Negotiate YIIFAKEFAKEFAKE", "Basic YWxpY2U6cHc="}}
			c := e.Client(e.Device("carol", "carol@test.realm"))
			if a := sendEAS(c, e.easURL("Sync", "carol", "CAROL1"), forged); a.code != http.StatusOK || a.body != "user=carol@test.realm@TEST.REALM\n" {
				t.Fatalf("served user with a forged header: %+v, want served as carol", a)
			}
			before, noAuth := e.Exchange.Started(), e.Exchange.WithoutNegotiate()
			a := sendEAS(e.Client(e.Device("eve", "eve@test.realm")), e.easURL("Sync", "eve", "EVE1"), forged)
			if a.code == http.StatusOK || e.Exchange.Started() != before || e.Exchange.WithoutNegotiate() != noAuth {
				t.Fatalf("sensitive user with her own Negotiate header: %+v; Exchange saw %d requests, %d without Negotiate",
					a, e.Exchange.Started()-before, e.Exchange.WithoutNegotiate()-noAuth)
			}
		})
	}
}

// TestAttackSecretsNotExposed: after real traffic, the service account's
// password and the secrets key appear in no log and no admin answer
// (/status, /status.json, /metrics, /readyz) of any process, config.json
// no longer holds the password, and the key and config files are 0600.
func TestAttackSecretsNotExposed(t *testing.T) {
	for _, mode := range Modes {
		t.Run(string(mode), func(t *testing.T) {
			e := Start(t, mode)
			c := e.Client(e.Device("bob", "bob@test.realm"))
			if a := sendEAS(c, e.easURL("Sync", "bob", "BOB1"), nil); a.code != http.StatusOK {
				t.Fatalf("request: %+v", a)
			}
			_ = sendEAS(e.Client(e.Device("eve", "eve@test.realm")), e.easURL("Sync", "eve", "EVE1"), nil)
			secrets := map[string]string{"service account password": ServicePassword}
			files, _ := filepath.Glob(filepath.Join(e.dir, "*", "config.key"))
			if len(files) == 0 {
				t.Fatal("no config.key was made next to any config.json")
			}
			for _, f := range files {
				checkMode(t, f)
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				secrets["secrets key "+f] = strings.TrimSpace(string(b))
			}
			cfgs, _ := filepath.Glob(filepath.Join(e.dir, "*", "config.json"))
			var seen []string
			for _, f := range cfgs {
				checkMode(t, f)
				b, _ := os.ReadFile(f)
				seen = append(seen, f+"\n"+string(b))
			}
			for _, p := range e.procs {
				for _, path := range []string{"/status", "/status.json", "/metrics", "/readyz", "/healthz"} {
					resp, err := http.Get("http://" + p.admin + path)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					seen = append(seen, p.roles+" "+path+"\n"+string(b))
				}
				seen = append(seen, p.roles+" log\n"+p.logs.String())
			}
			for what, s := range secrets {
				for _, text := range seen {
					if strings.Contains(text, s) {
						where, _, _ := strings.Cut(text, "\n")
						t.Errorf("the %s is readable in %s", what, where)
					}
				}
			}
		})
	}
}

func checkMode(t testing.TB, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		t.Errorf("%s has mode %v: readable by others", path, st.Mode().Perm())
	}
}

// TestAttackExpiredCertificateOnLongLivedConnections: a device certificate
// that expires while its connections stay open: a kept-alive HTTP/1.1
// connection, an HTTP/2 connection, and a connection whose Ping was held
// (parked) across the expiry and handed back. After NotAfter none of them
// may be served again.
func TestAttackExpiredCertificateOnLongLivedConnections(t *testing.T) {
	for _, mode := range Modes {
		t.Run(string(mode), func(t *testing.T) {
			e := Start(t, mode)
			// The set-up must end before NotAfter; a loaded machine may need
			// more than the first certificate's life for it.
			var x *expiring
			for life := 5 * time.Second; x == nil; life *= 2 {
				if life > 40*time.Second {
					t.Fatal("the set-up never ended before the certificate expired")
				}
				x = e.expiringSetup(t, life)
			}
			u := e.easURL("Sync", "frank", "FRANK1")
			if !testpoll.Within(20*time.Second, func() bool { return sendEAS(e.Client(x.d), u, nil).code != http.StatusOK }) {
				t.Fatal("a new connection with the expired certificate is still served")
			}
			if time.Now().Before(x.notAfter) {
				t.Fatalf("refused before NotAfter %v: the test cannot tell expiry apart", x.notAfter)
			}
			before := e.Exchange.Started()
			if a := sendEAS(x.keep, u, nil); a.code == http.StatusOK || !a.reused {
				t.Errorf("kept-alive connection after expiry: %+v (want refused on the reused connection)", a)
			}
			if a := sendEAS(x.h2, u, nil); a.code == http.StatusOK {
				t.Errorf("HTTP/2 connection after expiry: %+v", a)
			}
			if e.Exchange.Started() != before {
				t.Error("a request with the expired certificate reached Exchange")
			}
			if a := <-x.pinged; a.code != http.StatusOK {
				t.Logf("the Ping held across expiry was answered %d", a.code)
			}
			if a := sendEAS(x.ping, u, nil); a.code == http.StatusOK {
				t.Errorf("connection handed back by a Ping held across expiry: %+v", a)
			}
		})
	}
}

// expiring is frank's certificate about to expire, with a connection of each
// kind served, and a Ping held at Exchange until after NotAfter.
type expiring struct {
	d              Device
	notAfter       time.Time
	keep, h2, ping *http.Client
	pinged         chan attempt // the held Ping's outcome
}

// expiringSetup issues frank a certificate valid for life, serves a Sync on
// each connection and parks a Ping at Exchange. It returns nil when NotAfter
// came before the set-up ended (too slow a machine: the caller tries again
// with a longer life); a refusal before NotAfter fails t.
func (e *Env) expiringSetup(t *testing.T, life time.Duration) *expiring {
	t.Helper()
	c := e.w.ca.Device(t, "frank", testpki.Serial(e.w.serial()), testpki.UPN("frank@test.realm"),
		testpki.Subject(pkix.Name{CommonName: "frank"}), testpki.NotAfter(time.Now().Add(life)))
	x := &expiring{d: Device{Name: "frank", Cert: c.TLS(), Leaf: c.Cert}, notAfter: c.Cert.NotAfter, // whole seconds
		pinged: make(chan attempt, 1)}
	x.keep, x.h2, x.ping = e.attackClient(x.d, nil, false), e.attackClient(x.d, nil, true), e.attackClient(x.d, nil, false)
	u := e.easURL("Sync", "frank", "FRANK1")
	for name, cl := range map[string]*http.Client{"keep-alive": x.keep, "HTTP/2": x.h2, "Ping connection": x.ping} {
		if a := sendEAS(cl, u, nil); a.code != http.StatusOK {
			if time.Now().Before(x.notAfter) {
				t.Fatalf("%s before expiry: %+v", name, a)
			}
			t.Logf("%s refused after NotAfter (set-up took over %v): trying again", name, life)
			return nil
		}
	}
	started := e.Exchange.Started()
	hold := time.Until(x.notAfter) + 2*time.Second
	go func() {
		x.pinged <- sendEAS(x.ping, e.easURL("Ping", "frank", "FRANK1", "hold", strconv.Itoa(int(hold.Milliseconds()))), nil)
	}()
	// The Ping reaches Exchange before NotAfter, or it cannot be held across it.
	for e.Exchange.Started() == started {
		select {
		case a := <-x.pinged:
			if time.Now().Before(x.notAfter) {
				t.Fatalf("Ping before expiry: %+v", a)
			}
			t.Logf("Ping refused after NotAfter (set-up took over %v): trying again", life)
			return nil
		case <-time.After(10 * time.Millisecond): // polling interval
		}
	}
	return x
}

// TestAttackStatusPageEscapesCertificateNames: a device presents a
// certificate from its own CA whose subject is markup; the refusal is listed
// on the admin /status page, which must show it as text, not run it in the
// admin's browser.
func TestAttackStatusPageEscapesCertificateNames(t *testing.T) {
	// Subjects are shown only with segmesh.admin.showPersonalData.
	e := StartWith(t, AllInOne, func(cfg map[string]any) {
		section(section(cfg, "segmesh"), "admin")["showPersonalData"] = true
	})
	const cn = `<script>alert("seg")</script><img src=x onerror=alert(1)>`
	if a := sendEAS(e.attackClient(e.UntrustedDevice(cn, "alice@test.realm"), nil, false), e.easURL("Sync", "alice", "XSS1"), nil); a.code == http.StatusOK {
		t.Fatalf("untrusted certificate served: %+v", a)
	}
	var page string
	if !testpoll.Within(10*time.Second, func() bool {
		resp, err := http.Get("http://" + e.procs[0].admin + "/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		page = string(b)
		return strings.Contains(page, "alert")
	}) {
		t.Fatalf("the refusal never appeared on /status:\n%s", page)
	}
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "<img src=x") {
		t.Fatalf("/status carries the certificate's markup unescaped:\n%s", grepLines(page, "alert"))
	}
}
