package edge

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

// Attacker's review of TLS session resumption across edges (session 6,
// rvtls): each test is an attempt to get a session, an identity or a key
// the edge must not give.

// TestAttackResumeAfterTheKeyFileSettingIsEmptied: emptying
// segmesh.edge.tlsSessionTicketKeyFile (the key leaked: the admin goes
// back to per-process keys) must stop every ticket made under the shared
// keys from resuming, at once, on the edge that reloaded; the device does a
// full handshake and is still itself.
func TestAttackResumeAfterTheKeyFileSettingIsEmptied(t *testing.T) {
	for _, v := range tlsVersions {
		t.Run(v.name, func(t *testing.T) {
			keys := writeTicketKeys(t, filepath.Join(t.TempDir(), "tickets.key"), newTicketKey(t))
			h := newHarness(t, withTicketKeys(keys), options{})
			alice := h.phone(t, h.ca.issue(t, certOpts{cn: "alice"}), v.max)
			alice.mustSync(h.edge, "alice")
			if !alice.mustSync(h.edge, "alice") {
				t.Fatal("did not resume under the shared keys; the test would prove nothing")
			}
			next := *h.cfg
			next.Segmesh.Edge.TLSSessionTicketKeyFile = ""
			commit, err := h.edge.PrepareConfig(context.Background(), &next)
			if err != nil {
				t.Fatal(err)
			}
			commit()
			if alice.mustSync(h.edge, "alice") {
				t.Fatal("a ticket of the shared keys resumed after the key file setting was emptied")
			}
			// The per-process keys resume their own tickets.
			if !alice.mustSync(h.edge, "alice") {
				t.Fatal("per-process keys did not resume their own ticket")
			}
		})
	}
}

// TestAttackResumeWithoutACertificateOnADoorThatRequiresOne: a device
// without a client certificate gets a ticket from an edge that does not
// require one (same key file), then takes it to an edge that does (KCD):
// the resumed session has no certificate and must be refused there.
func TestAttackResumeWithoutACertificateOnADoorThatRequiresOne(t *testing.T) {
	for _, v := range tlsVersions {
		t.Run(v.name, func(t *testing.T) {
			keys := writeTicketKeys(t, filepath.Join(t.TempDir(), "tickets.key"), newTicketKey(t))
			h := newHarness(t, withTicketKeys(keys), options{})
			open := h.anotherEdge(t, func(c *config.Config) {
				c.RequireClientCertificate = false
				c.KCD = config.KCD{}
			})
			// The open edge answers whatever Exchange says (KCD off); the
			// handshake is what matters.
			anon := h.phone(t, tls.Certificate{}, v.max) // presents no certificate
			if resumed, status, body, err := anon.sync(open); err != nil || resumed {
				t.Fatalf("Sync without a certificate on the open edge: %d %v %q (resumed %v)", status, err, body, resumed)
			}
			if resumed, status, _, err := anon.sync(open); err != nil || !resumed {
				t.Fatalf("the open edge did not resume its own session (%d, %v, resumed %v); the test would prove nothing", status, err, resumed)
			}
			resumed, status, body, err := anon.sync(h.edge)
			if err == nil {
				t.Fatalf("a session without a certificate was accepted by the edge requiring one: status %d, resumed %v: %q", status, resumed, body)
			}
			if !strings.Contains(h.logs.String(), "reason=no_certificate") {
				t.Fatalf("refusal not logged as no_certificate:\n%s", h.logs)
			}
		})
	}
}

// TestAttackResumeAfterTheCertificateExpired: the ticket outlives the
// certificate it carries; resuming after the certificate's NotAfter (the
// edge's clock) must be refused as expired, though crypto/tls's own check
// of the ticket (on the real clock) lets it through.
func TestAttackResumeAfterTheCertificateExpired(t *testing.T) {
	for _, v := range tlsVersions {
		t.Run(v.name, func(t *testing.T) {
			keys := writeTicketKeys(t, filepath.Join(t.TempDir(), "tickets.key"), newTicketKey(t))
			clk := &testClock{t: time.Now()}
			h := newHarness(t, withTicketKeys(keys), options{now: clk.Now})
			alice := h.phone(t, h.ca.issue(t, certOpts{cn: "alice", notAfter: time.Now().Add(time.Hour)}), v.max)
			alice.mustSync(h.edge, "alice")
			if !alice.mustSync(h.edge, "alice") {
				t.Fatal("did not resume before the expiry; the test would prove nothing")
			}
			clk.Add(2 * time.Hour)
			if resumed, status, body, err := alice.sync(h.edge); err == nil {
				t.Fatalf("an expired certificate's session was accepted: status %d, resumed %v: %q", status, resumed, body)
			}
			if !strings.Contains(h.logs.String(), "reason=untrusted") || !strings.Contains(h.logs.String(), "expired") {
				t.Fatalf("refusal not logged as an expired certificate:\n%s", h.logs)
			}
		})
	}
}

// TestAttackTicketKeyFileTricks: key files an admin (or whoever can write
// next to the configuration) might hand the edge. A symlink to a good file
// is accepted (a Kubernetes Secret's ..data link), one to a file others may
// read is refused on the target's mode; a FIFO or a directory is refused
// without blocking config check or a reload (os.Open of a FIFO waits for a
// writer); text keys (hex, base64 without a newline, a passphrase) are not
// 32 random bytes and are refused, though their length is a multiple of 32.
func TestAttackTicketKeyFileTricks(t *testing.T) {
	k := newTicketKey(t)
	tests := []struct {
		name string
		make func(t *testing.T, path string)
		want string // "" for accepted
	}{
		{"symlink to a 0600 file", func(t *testing.T, path string) {
			target := writeTicketKeys(t, path+".real", k)
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"symlink to a world-readable file", func(t *testing.T, path string) {
			target := writeTicketKeys(t, path+".real", k)
			if err := os.Chmod(target, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, "has mode 0644"},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"FIFO", func(t *testing.T, path string) {
			safefiletest.Make(t, safefiletest.FIFO, path)
		}, "not a regular file"},
		{"hex text, 64 characters without a newline", func(t *testing.T, path string) {
			writeRaw(t, path, []byte(strings.Repeat("0123456789abcdef", 4)))
		}, "text"},
		{"base64 text, 64 characters without a newline", func(t *testing.T, path string) {
			writeRaw(t, path, []byte("q3v8Zl0m1Yd9PoU2kXc7RtH4sWn6JbE5aFg8LiN0MzQ1VyT3rCx2DuK9eOp7hGj4"))
		}, "text"},
		{"a 32-character passphrase", func(t *testing.T, path string) {
			writeRaw(t, path, []byte("CorrectHorseBatteryStaple-2026!!"))
		}, "text"},
		{"a random key behind a text key", func(t *testing.T, path string) {
			writeRaw(t, path, append(append([]byte{}, k[:]...), []byte("CorrectHorseBatteryStaple-2026!!")...))
		}, "key 2 is text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tickets.key")
			tt.make(t, path)
			var err error
			safefiletest.Within(t, "reading the key file", nil, func() { _, err = readTicketKeys(path) })
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a refusal saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "Horse") || strings.Contains(err.Error(), "0123456789") {
				t.Fatalf("the refusal quotes the key: %v", err)
			}
		})
	}
}

// writeRaw writes data to path with mode 0600.
func writeRaw(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAttackEarlyDataIsRefused: 0-RTT must stay off (early data can be
// replayed, and a replayed Sync or SendMail is a second one). A TLS 1.3
// ClientHello offering early_data (RFC 8446 4.2.10), as a client holding a
// ticket that allowed it would send, gets the handshake refused with
// unsupported_extension, never a ServerHello: crypto/tls accepts early data
// only over QUIC (handshake_server_tls13.go), and the edge's tickets never
// allow it.
func TestAttackEarlyDataIsRefused(t *testing.T) {
	h := newHarness(t, nil, options{})
	// A ClientHello as Go's client writes it, captured on a pipe.
	client, server := net.Pipe()
	go func() {
		_ = tls.Client(client, &tls.Config{ServerName: "edge.lab.test", MinVersion: tls.VersionTLS13}).Handshake()
	}()
	hello := make([]byte, 5)
	if _, err := io.ReadFull(server, hello); err != nil {
		t.Fatal(err)
	}
	hello = append(hello, make([]byte, int(hello[3])<<8|int(hello[4]))...)
	if _, err := io.ReadFull(server, hello[5:]); err != nil {
		t.Fatal(err)
	}
	_ = server.Close()
	_ = client.Close()
	// Insert early_data (type 42, empty) first among the extensions and
	// fix the three lengths (record, handshake, extensions).
	p := 5 + 4 + 2 + 32
	p += 1 + int(hello[p])                        // session id
	p += 2 + (int(hello[p])<<8 | int(hello[p+1])) // cipher suites
	p += 1 + int(hello[p])                        // compression methods
	ext := []byte{0x00, 0x2a, 0x00, 0x00}
	out := append(append(append([]byte{}, hello[:p+2]...), ext...), hello[p+2:]...)
	add := func(at, size int) {
		v := 0
		for i := range size {
			v = v<<8 | int(out[at+i])
		}
		v += len(ext)
		for i := size - 1; i >= 0; i-- {
			out[at+i] = byte(v)
			v >>= 8
		}
	}
	add(3, 2) // record length
	add(6, 3) // handshake length
	add(p, 2) // extensions length
	conn, err := net.Dial("tcp", h.edge.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	rec := make([]byte, 7)
	if _, err := io.ReadFull(conn, rec); err != nil {
		t.Fatalf("no answer to a ClientHello offering early data: %v", err)
	}
	// An alert record (21) of level fatal (2), unsupported_extension (110).
	if rec[0] != 21 || rec[5] != 2 || rec[6] != 110 {
		t.Fatalf("answer to a ClientHello offering early data: record type %d, % x; want a fatal unsupported_extension alert", rec[0], rec)
	}
}
