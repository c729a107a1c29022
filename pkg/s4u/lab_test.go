//go:build lab

package s4u_test

// Lab tests: against the Samba AD KDC of deploy/lab (bash deploy/lab/lab.sh
// up). Run with: go test -tags lab -run Lab ./pkg/s4u/
// The lab facts come from $SEGMESH_LAB_DIR/lab.json (default
// /var/tmp/segmesh-lab).

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/negotiate"
	"github.com/segmesh/segmesh/pkg/s4u"
)

type labFacts map[string]string

// lab reads the facts lab.sh wrote (lab.json) for tests and benchmarks.
func lab(t testing.TB) labFacts {
	t.Helper()
	dir := os.Getenv("SEGMESH_LAB_DIR")
	if dir == "" {
		dir = "/var/tmp/segmesh-lab"
	}
	b, err := os.ReadFile(filepath.Join(dir, "lab.json"))
	if err != nil {
		t.Fatalf("lab facts: %v (bring the lab up: bash deploy/lab/lab.sh up)", err)
	}
	var f labFacts
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f labFacts) secret(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile(f[key])
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return strings.TrimSpace(string(b))
}

func labClient(t *testing.T, f labFacts, kdcAddr string) *s4u.Client {
	t.Helper()
	tr, err := kdc.New(kdc.Config{Realms: map[string][]string{f["LAB_REALM"]: {kdcAddr}}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s4u.New(s4u.Config{
		Realm: f["LAB_REALM"], Service: f["LAB_SVC_USER"], Password: f.secret(t, "LAB_SVC_PASSWORD_FILE"), Exchanger: tr,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// acceptedByExchange sends a Negotiate header built from tk to the lab's
// Apache mod_auth_gssapi and returns the status and body.
func acceptedByExchange(t *testing.T, f labFacts, tk *s4u.Ticket) (int, string) {
	t.Helper()
	b, err := negotiate.New(tk.DER, tk.SessionKey, tk.CName, tk.CRealm, negotiate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := b.Header()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, f["LAB_EXCHANGE_URL"]+"/Microsoft-Server-ActiveSync", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", h)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestLabServiceTicket(t *testing.T) {
	f := lab(t)
	c := labClient(t, f, f["LAB_KDC_DIRECT"])
	kt, err := keytab.Load(f["LAB_EXCHANGE_KEYTAB"])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user     string
		wantUser string // REMOTE_USER as Apache reports it
	}{
		{"alice", "alice@LAB.TEST"},
		// An enterprise name keeps its escaped "@" in the GSS name.
		{"alice@lab.test", `alice\@lab.test@LAB.TEST`},
		{"bob.smith@lab.test", `bob.smith\@lab.test@LAB.TEST`},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			tk, err := c.ServiceTicket(context.Background(), tt.user, f["LAB_TARGET_SPN"])
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("cname %v (type %d) crealm %s, etype %d, end %v", tk.CName.NameString, tk.CName.NameType, tk.CRealm, tk.SessionKey.KeyType, tk.EndTime)
			var dec messages.Ticket
			if err := dec.Unmarshal(tk.DER); err != nil {
				t.Fatal(err)
			}
			if err := dec.DecryptEncPart(kt, nil); err != nil {
				t.Fatalf("ticket does not decrypt with the Exchange keytab: %v", err)
			}
			if !dec.DecryptedEncPart.CName.Equal(tk.CName) {
				t.Fatalf("ticket client %v, reply client %v", dec.DecryptedEncPart.CName, tk.CName)
			}
			code, body := acceptedByExchange(t, f, tk)
			if code != http.StatusOK {
				t.Fatalf("Exchange stand-in answered %d: %s", code, body)
			}
			var echo struct {
				RemoteUser string `json:"remote_user"`
			}
			if err := json.Unmarshal([]byte(body), &echo); err != nil {
				t.Fatalf("echo body: %v\n%s", err, body)
			}
			if echo.RemoteUser != tt.wantUser {
				t.Fatalf("REMOTE_USER = %q, want %q", echo.RemoteUser, tt.wantUser)
			}
			// A second header from the same ticket is accepted too (a new
			// authenticator each time; Apache keeps a replay cache).
			if code, body := acceptedByExchange(t, f, tk); code != http.StatusOK {
				t.Fatalf("second token: %d: %s", code, body)
			}
		})
	}
}

func TestLabErrors(t *testing.T) {
	f := lab(t)
	c := labClient(t, f, f["LAB_KDC_DIRECT"])
	tests := []struct {
		name, user, spn string
		code            int32
		stage           s4u.Stage
		hint            string
	}{
		{"unknown user", "nobody.at.all@lab.test", f["LAB_TARGET_SPN"], 6, s4u.StageS4U2Self, "altSecurityIdentities"},
		{"carol by altSecurityIdentities only", "carol.ext@LAB.TEST", f["LAB_TARGET_SPN"], 6, s4u.StageS4U2Self, "certificate mapping"},
		{"SPN not delegated", "alice", f["LAB_OTHER_SPN"], 13, s4u.StageS4U2Proxy, "msDS-AllowedToDelegateTo"},
		{"sensitive user", "eve", f["LAB_TARGET_SPN"], 13, s4u.StageS4U2Proxy, "sensitive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ServiceTicket(context.Background(), tt.user, tt.spn)
			var ke *s4u.KDCError
			if !errors.As(err, &ke) {
				t.Fatalf("err = %v, want *KDCError", err)
			}
			t.Logf("%v", err)
			if ke.Code != tt.code || ke.Stage != tt.stage || !strings.Contains(ke.Hint, tt.hint) {
				t.Fatalf("got %d at %s, want %d at %s with a hint naming %s", ke.Code, ke.Stage, tt.code, tt.stage, tt.hint)
			}
		})
	}
}

func TestLabWrongPassword(t *testing.T) {
	f := lab(t)
	tr, err := kdc.New(kdc.Config{Realms: map[string][]string{f["LAB_REALM"]: {f["LAB_KDC_DIRECT"]}}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s4u.New(s4u.Config{Realm: f["LAB_REALM"], Service: f["LAB_SVC_USER"], Password: "not-the-Password-1", Exchanger: tr})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ServiceTicket(context.Background(), "alice", f["LAB_TARGET_SPN"])
	var ke *s4u.KDCError
	if !errors.As(err, &ke) || ke.Stage != s4u.StageASReq || (ke.Code != 24 && ke.Code != 25) {
		t.Fatalf("err = %v, want pre-authentication failure at as-req", err)
	}
	t.Logf("%v", err)
}

// recConn records what a KDC sends.
type recConn struct {
	net.Conn
	mu  *sync.Mutex
	out *[][]byte
	buf []byte
}

func (c *recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.buf = append(c.buf, p[:n]...)
	return n, err
}

func (c *recConn) Close() error {
	c.mu.Lock()
	if len(c.buf) > 4 {
		*c.out = append(*c.out, c.buf[4:])
		c.buf = nil
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// replies collects the KDC's replies (without the TCP length prefix) read
// by a recordingClient's connections.
type replies struct {
	mu  sync.Mutex
	got [][]byte
}

// take returns the replies recorded since the last take and forgets them.
func (r *replies) take() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

// recordingClient is an s4u client for the lab's service account whose KDC
// connections record the replies into the returned replies.
func recordingClient(t *testing.T, f labFacts, timeout time.Duration) (*s4u.Client, *replies) {
	t.Helper()
	rec := &replies{}
	var d net.Dialer
	tr, err := kdc.New(kdc.Config{Realms: map[string][]string{f["LAB_REALM"]: {f["LAB_KDC_DIRECT"]}}, Timeout: timeout,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &recConn{Conn: c, mu: &rec.mu, out: &rec.got}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s4u.New(s4u.Config{Realm: f["LAB_REALM"], Service: f["LAB_SVC_USER"], Password: f.secret(t, "LAB_SVC_PASSWORD_FILE"), Exchanger: tr})
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

// TestLabRecordReplies records the Samba KDC's KRB-ERROR replies into
// testdata/samba when SEGMESH_RECORD=1 (replies holding tickets or
// encrypted parts are not kept: they could be attacked offline).
func TestLabRecordReplies(t *testing.T) {
	if os.Getenv("SEGMESH_RECORD") != "1" {
		t.Skip("set SEGMESH_RECORD=1 to record")
	}
	f := lab(t)
	c, rec := recordingClient(t, f, 0)
	steps := []struct{ file, user, spn string }{
		{"s4u2self-unknown-user", "nobody.at.all@lab.test", f["LAB_TARGET_SPN"]},
		{"s4u2proxy-not-delegated", "alice", f["LAB_OTHER_SPN"]},
		{"s4u2proxy-sensitive-user", "eve", f["LAB_TARGET_SPN"]},
	}
	if err := os.MkdirAll("testdata/samba", 0o755); err != nil {
		t.Fatal(err)
	}
	save := func(name string, b []byte) {
		if kdc.MessageType(b) != 30 {
			t.Fatalf("%s: not a KRB-ERROR", name)
		}
		if err := os.WriteFile(filepath.Join("testdata/samba", name+".der"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range steps {
		rec.take()
		if _, err := c.ServiceTicket(context.Background(), s.user, s.spn); err == nil {
			t.Fatalf("%s: no error", s.file)
		}
		replies := rec.take()
		if i == 0 {
			save("as-preauth-required", replies[0])
		}
		save(s.file, replies[len(replies)-1])
	}
}

// BenchmarkLabS4U measures one S4U2Self+S4U2Proxy pair against the lab's
// Samba KDC; cpu-ns/op is this process only, i.e. the client's CPU.
func BenchmarkLabS4U(b *testing.B) {
	f := lab(b)
	pw, err := os.ReadFile(f["LAB_SVC_PASSWORD_FILE"])
	if err != nil {
		b.Fatal(err)
	}
	tr, err := kdc.New(kdc.Config{Realms: map[string][]string{f["LAB_REALM"]: {f["LAB_KDC_DIRECT"]}}})
	if err != nil {
		b.Fatal(err)
	}
	c, err := s4u.New(s4u.Config{Realm: f["LAB_REALM"], Service: f["LAB_SVC_USER"], Password: strings.TrimSpace(string(pw)), Exchanger: tr})
	if err != nil {
		b.Fatal(err)
	}
	benchPairs(b, c)
}

// TestLabTransport gets alice's ticket through the forwarder segmesh's
// config names, with a dead KDC listed first (failover), and with UDP on.
func TestLabTransport(t *testing.T) {
	f := lab(t)
	tests := []struct {
		name  string
		addrs []string
		udp   bool
	}{
		{"forwarder", []string{f["LAB_KDC"]}, false},
		{"dead KDC first", []string{"127.0.0.2:1", f["LAB_KDC_DIRECT"]}, false},
		{"udp first", []string{f["LAB_KDC_DIRECT"]}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var attempts []kdc.AttemptInfo
			var mu sync.Mutex
			tr, err := kdc.New(kdc.Config{Realms: map[string][]string{f["LAB_REALM"]: tt.addrs}, UDP: tt.udp, Timeout: 5 * time.Second,
				Hooks: kdc.Hooks{OnAttempt: func(a kdc.AttemptInfo) { mu.Lock(); attempts = append(attempts, a); mu.Unlock() }}})
			if err != nil {
				t.Fatal(err)
			}
			c, err := s4u.New(s4u.Config{Realm: f["LAB_REALM"], Service: f["LAB_SVC_USER"], Password: f.secret(t, "LAB_SVC_PASSWORD_FILE"), Exchanger: tr})
			if err != nil {
				t.Fatal(err)
			}
			tk, err := c.ServiceTicket(context.Background(), "alice", f["LAB_TARGET_SPN"])
			if err != nil {
				t.Fatal(err)
			}
			if tk.ClientString() != "alice@"+f["LAB_REALM"] {
				t.Fatalf("client %s", tk.ClientString())
			}
			mu.Lock()
			defer mu.Unlock()
			var udpOK, failed int
			for _, a := range attempts {
				if a.Err != nil {
					failed++
				} else if a.Network == "udp" {
					udpOK++
				}
			}
			switch {
			case tt.udp && udpOK == 0:
				t.Fatalf("no exchange went over UDP: %+v", attempts)
			case tt.name == "dead KDC first" && failed == 0:
				t.Fatal("the dead KDC was not tried")
			}
		})
	}
}
