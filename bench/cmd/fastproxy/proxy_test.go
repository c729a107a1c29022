package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// selfSigned returns a TLS certificate for 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fastproxy"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestProxyOverTLS: a device's request over TLS reaches the plain-HTTP
// backend with the header rule applied (hop-by-hop and the device's
// credentials gone, X-Forwarded-* from the connection, the Negotiate-sized
// header added) and its answer comes back.
func TestProxyOverTLS(t *testing.T) {
	var seen http.Header
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Header().Set("MS-Server-ActiveSync", "15.1")
		_, _ = w.Write([]byte("ok"))
	}))
	defer backend.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}})
	if err != nil {
		t.Fatal(err)
	}
	srv := newProxy(strings.TrimPrefix(backend.URL, "http://"), 100, 8, false, slog.New(slog.DiscardHandler)).server()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	defer func() { _ = srv.Shutdown(); <-done }()

	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("POST", "https://"+ln.Addr().String()+"/Microsoft-Server-ActiveSync?Cmd=Sync", strings.NewReader("hello"))
	req.Header.Set("Authorization", "Basic YTpi")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("Connection", "X-Secret")
	req.Header.Set("X-Secret", "1")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("MS-Server-ActiveSync") != "15.1" {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	for name, want := range map[string]string{"Authorization": "", "X-Secret": "", "X-Forwarded-For": "127.0.0.1",
		"X-Forwarded-Proto": "https", "X-Bench-Negotiate": "Negotiate " + strings.Repeat("Y", 100)} {
		if got := seen.Get(name); got != want {
			t.Errorf("backend got %s %q, want %q", name, got, want)
		}
	}
}
