//go:build lab

package edge_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/services/edge"
)

// The harness these tests share (startSegmesh, labClient, do, easURL…) is
// in lab_helpers_test.go.

// TestLabEdge covers the request path against the real directory, KDC and
// Apache mod_auth_gssapi with one running segmesh.
func TestLabEdge(t *testing.T) {
	lab := labenv.Up(t)
	sm := startSegmesh(t, lab, runOptions{})

	t.Run("users", func(t *testing.T) {
		tests := []struct {
			name, user, want string
		}{
			// UPN in the certificate's SAN.
			{name: "SAN UPN", user: "alice", want: "alice@lab.test"},
			// No UPN in the certificate: found by its userCertificate (LDAP mapping).
			{name: "mapped", user: "bob", want: "bob.smith@lab.test"},
			// SAN UPN carol.ext@LAB.TEST matches no userPrincipalName; carol's
			// altSecurityIdentities holds Kerberos:carol.ext@LAB.TEST.
			{name: "altSecurityIdentities", user: "carol", want: "carol@lab.test"},
			// Mapping wins over a SAN UPN naming someone else.
			{name: "mapping wins", user: "mallory", want: "mallory@lab.test"},
			// A certificate from the second trusted CA.
			{name: "second CA", user: "alice-ca2", want: "alice@lab.test"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := mustEcho(t, sm.client(t, tt.user), "POST", easURL(sm.base, "Sync", tt.user, "LABEDGE1"), []byte("<sync/>"), nil)
				if got := upnOf(e.RemoteUser); got != tt.want || e.AuthType != "Negotiate" {
					t.Fatalf("Exchange authenticated %q by %q, want %q by Negotiate", e.RemoteUser, e.AuthType, tt.want)
				}
				if e.BodyLength != int64(len("<sync/>")) || e.Path != easPath {
					t.Fatalf("request arrived as %+v", e)
				}
			})
		}
	})

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name, user string
			logWants   func(t *testing.T) []string
		}{
			{name: "revoked", user: "alice-revoked", logWants: func(t *testing.T) []string {
				c := testpki.CertFile(t, lab.User("alice-revoked").Cert)
				return []string{"client certificate refused", "reason=revoked", c.SerialNumber.Text(16), c.Issuer.String()}
			}},
			{name: "untrusted CA", user: "alice-ca3", logWants: func(t *testing.T) []string {
				c := testpki.CertFile(t, lab.User("alice-ca3").Cert)
				return []string{"client certificate refused", "reason=untrusted", c.Issuer.String()}
			}},
			{name: "no certificate", user: "", logWants: func(*testing.T) []string {
				return []string{"client certificate refused", "reason=no_certificate"}
			}},
			{name: "expired", user: "alice-expired", logWants: func(*testing.T) []string {
				return []string{"client certificate refused", "reason=untrusted"}
			}},
			{name: "wrong EKU", user: "alice-wrongeku", logWants: func(*testing.T) []string {
				return []string{"client certificate refused", "reason=untrusted"}
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := len(sm.logs.String())
				resp, b, err := do(t, sm.client(t, tt.user), "POST", easURL(sm.base, "Sync", "alice", "LABEDGE2"), []byte("x"), nil)
				switch {
				case err != nil: // refused in the handshake: the usual outcome
				case resp.StatusCode == http.StatusForbidden:
				default:
					t.Fatalf("status %d, want a refused handshake or 403: %s", resp.StatusCode, b)
				}
				if bytes.Contains(b, []byte("remote_user")) {
					t.Fatalf("the request reached Exchange: %s", b)
				}
				wants := tt.logWants(t)
				var line string
				if !eventually(5*time.Second, func() bool {
					line = lineWith(sm.logs.String()[before:], wants[0])
					return line != ""
				}) {
					t.Fatalf("no %q line in the log:\n%s", wants[0], sm.logs.String()[before:])
				}
				for _, w := range wants[1:] {
					if !strings.Contains(line, w) {
						t.Errorf("log line lacks %q: %s", w, line)
					}
				}
			})
		}
	})

	t.Run("device Authorization replaced", func(t *testing.T) {
		hdr := http.Header{
			"Authorization":       {"Basic YWxpY2U6cGFzc3dvcmQ="},
			"Proxy-Authorization": {"Basic YWxpY2U6cGFzc3dvcmQ="},
		}
		e := mustEcho(t, sm.client(t, "alice"), "POST", easURL(sm.base, "Sync", "alice", "LABEDGE3"), []byte("x"), hdr)
		if e.OtherAuthorization || len(e.AuthorizationSchemes) != 1 || e.AuthorizationSchemes[0] != "Negotiate" {
			t.Fatalf("Exchange saw Authorization schemes %v (other %v), want only Negotiate", e.AuthorizationSchemes, e.OtherAuthorization)
		}
		if upnOf(e.RemoteUser) != "alice@lab.test" {
			t.Fatalf("remote user %q", e.RemoteUser)
		}
	})

	t.Run("Exchange statuses pass through", func(t *testing.T) {
		tests := []struct {
			name   string
			query  string
			status int
			header http.Header
		}{
			{name: "449 provision", query: "status=449", status: 449},
			{name: "451 redirect", query: "status=451&header=X-MS-Location:https://mail2.lab.test/Microsoft-Server-ActiveSync",
				status: 451, header: http.Header{"X-Ms-Location": {"https://mail2.lab.test/Microsoft-Server-ActiveSync"}}},
			{name: "503 retry-after", query: "status=503&header=Retry-After:17", status: 503, header: http.Header{"Retry-After": {"17"}}},
			{name: "456 blocked", query: "status=456", status: 456},
			{name: "457 device not provisioned", query: "status=457", status: 457},
			{name: "507 mailbox full", query: "status=507", status: 507},
			{name: "OPTIONS headers", query: "header=MS-Server-ActiveSync:15.1&header=MS-ASProtocolVersions:14.0,14.1,16.0",
				status: 200, header: http.Header{"Ms-Server-Activesync": {"15.1"}, "Ms-Asprotocolversions": {"14.0,14.1,16.0"}}},
		}
		c := sm.client(t, "alice")
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, b, err := do(t, c, "POST", easURL(sm.base, "Sync", "alice", "LABEDGE4", tt.query), []byte("x"), nil)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != tt.status {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
				}
				for k, v := range tt.header {
					if got := resp.Header.Values(k); strings.Join(got, ",") != strings.Join(v, ",") {
						t.Errorf("%s = %q, want %q", k, got, v)
					}
				}
				var e echo
				if err := json.Unmarshal(b, &e); err != nil || upnOf(e.RemoteUser) != "alice@lab.test" {
					t.Fatalf("body is not Exchange's answer for alice: %s", b)
				}
			})
		}
	})

	t.Run("401 retried once with a new ticket", func(t *testing.T) {
		c := sm.client(t, "alice")
		key := "edge" + strconv.FormatInt(time.Now().UnixNano(), 36)
		t.Cleanup(func() { _ = os.Remove(filepath.Join(os.TempDir(), "labcgi-once-"+key)) })
		before := len(sm.logs.String())
		e := mustEcho(t, c, "POST", easURL(sm.base, "Sync", "alice", "LABEDGE5", "status=401&once="+key), []byte("<sync/>"), nil)
		if upnOf(e.RemoteUser) != "alice@lab.test" || e.BodyLength != int64(len("<sync/>")) {
			t.Fatalf("retried request arrived as %+v", e)
		}
		// Log lines are written in batches (telemetry.BufferedWriter): poll.
		var logs string
		if !eventually(5*time.Second, func() bool {
			logs = sm.logs.String()[before:]
			return strings.Contains(logs, "retrying once with a new one") && strings.Contains(lineWith(logs, "device_id=LABEDGE5"), "retried_401=true")
		}) {
			t.Fatalf("the log shows no retry:\n%s", logs)
		}

		// A 401 on the retry too reaches the device, without a challenge it cannot answer.
		resp, b, err := do(t, c, "POST", easURL(sm.base, "Sync", "alice", "LABEDGE5", "status=401&header=WWW-Authenticate:Basic"), []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "" {
			t.Fatalf("status %d WWW-Authenticate %q, want 401 without a challenge: %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), b)
		}
	})
}

// TestLabKDCDown stops the KDC (lab fault kdc): a user whose ticket the edge
// holds is still served, a new user gets 503 with Retry-After, and once the
// KDC is back the new user is served.
func TestLabKDCDown(t *testing.T) {
	lab := labenv.Up(t)
	sm := startSegmesh(t, lab, runOptions{})
	cached := sm.client(t, "alice")
	mustEcho(t, cached, "POST", easURL(sm.base, "Sync", "alice", "LABKDC1"), []byte("x"), nil)

	lab.Fault(t, "kdc", true)
	e := mustEcho(t, cached, "POST", easURL(sm.base, "Sync", "alice", "LABKDC1"), []byte("x"), nil)
	if upnOf(e.RemoteUser) != "alice@lab.test" {
		t.Fatalf("cached user served as %q", e.RemoteUser)
	}
	newUser := "user0007"
	start := time.Now()
	resp, b, err := do(t, sm.client(t, newUser), "POST", easURL(sm.base, "Sync", newUser, "LABKDC2"), []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("new user with the KDC down: status %d Retry-After %q, want 503 with Retry-After: %s",
			resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if bytes.Contains(b, []byte("remote_user")) {
		t.Fatalf("the request reached Exchange: %s", b)
	}
	t.Logf("new user refused with 503 after %v", time.Since(start))

	lab.Fault(t, "kdc", false)
	start = time.Now()
	var last int
	if !eventually(30*time.Second, func() bool {
		resp, _, err := do(t, sm.client(t, newUser), "POST", easURL(sm.base, "Sync", newUser, "LABKDC2"), []byte("x"), nil)
		if err == nil {
			last = resp.StatusCode
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}) {
		t.Fatalf("new user not served after the KDC came back: last status %d", last)
	}
	t.Logf("new user served %v after the KDC came back", time.Since(start))
}

// TestLabPingNotCut holds an EAS Ping at Exchange four times longer than the
// listener's idle and header timeouts, made short here (1 s): nothing on the
// request path cuts it. Go's http.Server has no timeout unless one is set;
// the edge sets none that covers a whole request (no ReadTimeout or
// WriteTimeout), only ReadHeaderTimeout and IdleTimeout, and upstream a
// ResponseHeaderTimeout above the longest heartbeat (3540 s). The slow-header
// case shows the short timeouts are in force.
func TestLabPingNotCut(t *testing.T) {
	lab := labenv.Up(t)
	const short = time.Second
	sm := startSegmesh(t, lab, runOptions{tune: func(c *edge.Config) {
		c.ReadHeaderTimeout, c.IdleTimeout, c.KeepAlive = short, short, short
	}})
	c := sm.client(t, "alice")
	mustEcho(t, c, "POST", easURL(sm.base, "Sync", "alice", "LABPING1"), []byte("x"), nil) // ticket cached

	start := time.Now()
	e := mustEcho(t, c, "POST", easURL(sm.base, "Ping", "alice", "LABPING1", "hold=4"), []byte("<Ping/>"), nil)
	if took := time.Since(start); e.HeldSeconds != 4 || took < 4*short {
		t.Fatalf("Ping held %.1f s, answered after %v; want held 4 s", e.HeldSeconds, took)
	}

	// A client that never finishes its headers is cut after ReadHeaderTimeout.
	conn := dialTLS(t, lab, sm, "alice")
	if _, err := io.WriteString(conn, "POST "+easPath+"?Cmd=Sync HTTP/1.1\r\nHost: seg.lab.test\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(15 * short))
	start = time.Now()
	_, err := io.Copy(io.Discard, conn)
	if took := time.Since(start); err != nil || took > 10*short {
		t.Fatalf("slow headers: connection ended after %v with %v, want closed after about %v", took, err, short)
	}
}
