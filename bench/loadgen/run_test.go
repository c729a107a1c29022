package loadgen

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func testCA(t testing.TB) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

func TestMintUPNAndChain(t *testing.T) {
	ca, key := testCA(t)
	certs, err := Mint(ca, key, MintOptions{N: 3, UPN: func(i int) string { return []string{"a@lab.test", "b@lab.test", "c@lab.test"}[i] }})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for i, c := range certs {
		if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Fatalf("certificate %d does not verify: %v", i, err)
		}
		want, _ := upnSAN([]string{"a@lab.test", "b@lab.test", "c@lab.test"}[i])
		var found bool
		for _, e := range c.Leaf.Extensions {
			if e.Id.Equal(oidSAN) && bytes.Equal(e.Value, want) {
				found = true
			}
		}
		if !found || !bytes.Contains(want, []byte([]string{"a@lab.test", "b@lab.test", "c@lab.test"}[i])) {
			t.Fatalf("certificate %d lacks its UPN SAN", i)
		}
	}
}

// tlsServer is a loopback mTLS server recording the client certificates seen.
func tlsServer(t *testing.T, ca *x509.Certificate) (*httptest.Server, func() map[string]int) {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "no cert", http.StatusForbidden)
			return
		}
		if r.URL.Query().Get("Cmd") != "Sync" || r.ContentLength != 200 {
			http.Error(w, "not a sync", http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen[r.TLS.PeerCertificates[0].Subject.CommonName]++
		mu.Unlock()
	}))
	startMTLS(t, srv, ca)
	return srv, func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range seen {
			out[k] = v
		}
		return out
	}
}

// clients are the closed loop's HTTP clients; the tests that run the closed
// loop run with each.
var clients = []Client{NetHTTPClient, PhoneClient}

// startMTLS starts srv asking for client certificates from ca.
func startMTLS(t *testing.T, srv *httptest.Server, ca *x509.Certificate) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
}

func TestRunBoundsAndRotation(t *testing.T) {
	ca, key := testCA(t)
	certs, err := Mint(ca, key, MintOptions{N: 5})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name           string
		mode           Mode
		rate           float64
		wantHandshakes uint64
	}{
		{"keepalive closed loop", KeepAlive, 0, 2},
		{"handshake closed loop", Handshake, 0, 40},
		{"handshake open loop", Handshake, 2000, 40},
	}
	for _, client := range clients {
		for _, tt := range tests {
			if client == PhoneClient && tt.rate > 0 {
				continue // closed loop only (TestPhoneRefusesOpenLoop)
			}
			t.Run(string(client)+"/"+tt.name, func(t *testing.T) {
				srv, seen := tlsServer(t, ca)
				res, err := Run(context.Background(), Config{
					Target: srv.URL, Certs: NewRotation(certs), Mode: tt.mode, Kind: Sync,
					Concurrency: 2, Rate: tt.rate, N: 40, Duration: 20 * time.Second, BodySize: 200, Client: client,
				})
				if err != nil {
					t.Fatal(err)
				}
				if res.Requests != 40 || res.OK != 40 || len(res.Errors) != 0 {
					t.Fatalf("requests %d ok %d errors %v, want 40 40 none", res.Requests, res.OK, res.Errors)
				}
				if res.Latency.Count() != 40 {
					t.Fatalf("latency count %d, want 40", res.Latency.Count())
				}
				if res.Handshakes != tt.wantHandshakes {
					t.Fatalf("handshakes %d, want %d", res.Handshakes, tt.wantHandshakes)
				}
				s := seen()
				if tt.mode == Handshake && len(s) != 5 {
					t.Fatalf("server saw %d distinct certificates, want all 5: %v", len(s), s)
				}
			})
		}
	}
}

func TestRunStopsAtDuration(t *testing.T) {
	ca, key := testCA(t)
	certs, err := Mint(ca, key, MintOptions{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := tlsServer(t, ca)
	// Without a count bound only Duration ends the run; were it ignored, the
	// test would hang until go test's timeout.
	res, err := Run(context.Background(), Config{
		Target: srv.URL, Certs: NewRotation(certs), Mode: KeepAlive, Kind: Sync,
		Concurrency: 1, Duration: 300 * time.Millisecond, BodySize: 200,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK == 0 {
		t.Fatalf("no request answered: %+v", res)
	}
}

func TestRunCountsHTTPErrors(t *testing.T) {
	ca, _ := testCA(t)
	srv, _ := tlsServer(t, ca)
	// No certificate: the server's handshake refuses, every request fails.
	res, err := Run(context.Background(), Config{Target: srv.URL, Mode: Handshake, Kind: Sync, Concurrency: 1, N: 3, Duration: 10 * time.Second, BodySize: 200})
	if err != nil {
		t.Fatal(err)
	}
	var errs uint64
	for _, v := range res.Errors {
		errs += v
	}
	if res.OK != 0 || errs != 3 {
		t.Fatalf("ok %d errors %v, want 0 ok and 3 errors", res.OK, res.Errors)
	}
}

func TestRunSkipLeavesEarlyRequestsOut(t *testing.T) {
	ca, key := testCA(t)
	certs, err := Mint(ca, key, MintOptions{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv, seen := tlsServer(t, ca)
	res, err := Run(context.Background(), Config{
		Target: srv.URL, Certs: NewRotation(certs), Mode: KeepAlive, Kind: Sync,
		Concurrency: 1, Duration: 200 * time.Millisecond, Skip: time.Hour, BodySize: 200,
	})
	if err != nil {
		t.Fatal(err)
	}
	var served int
	for _, n := range seen() {
		served += n
	}
	if served == 0 {
		t.Fatal("the server saw no request")
	}
	if res.OK != 0 || res.Requests != 0 || res.Latency.Count() != 0 {
		t.Fatalf("with the whole run skipped: requests %d ok %d latencies %d, want 0 (server saw %d)", res.Requests, res.OK, res.Latency.Count(), served)
	}
}

// TestRunResumeKeepsEachPhonesSession: with Resume each worker (a phone)
// resumes its TLS session on every reconnect: one full handshake per
// worker, the rest resumed, and each phone stays the certificate of its
// full handshake. Without it every connection is a full handshake
// (TestRunBoundsAndRotation).
func TestRunResumeKeepsEachPhonesSession(t *testing.T) {
	ca, key := testCA(t)
	certs, err := Mint(ca, key, MintOptions{N: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, client := range clients {
		t.Run(string(client), func(t *testing.T) {
			srv, seen := tlsServer(t, ca)
			res, err := Run(context.Background(), Config{
				Target: srv.URL, Certs: NewRotation(certs), Mode: Handshake, Kind: Sync,
				Concurrency: 2, N: 40, Duration: 20 * time.Second, BodySize: 200, Resume: true, Client: client,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.OK != 40 || res.Handshakes != 2 || res.Resumed != 38 {
				t.Fatalf("ok %d full handshakes %d resumed %d, want 40, 2 (one per phone), 38", res.OK, res.Handshakes, res.Resumed)
			}
			if s := seen(); len(s) != 2 {
				t.Fatalf("server saw %d distinct certificates, want 2 (each phone keeps its own): %v", len(s), s)
			}
		})
	}
}
