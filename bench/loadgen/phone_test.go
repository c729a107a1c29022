package loadgen

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPhoneRefusesOpenLoopAndUnknownClients(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	_, err := Run(context.Background(), Config{Target: srv.URL, Client: PhoneClient, Rate: 10, Duration: time.Second})
	if !errors.Is(err, errPhoneOpenLoop) {
		t.Fatalf("phone client with -rate: %v, want errPhoneOpenLoop", err)
	}
	if _, err := Run(context.Background(), Config{Target: srv.URL, Client: "curl", Concurrency: 1, Duration: time.Second}); err == nil {
		t.Fatal("an unknown client was accepted")
	}
}

// TestPhonePingReconnectsAsADrainedPhone: a Ping answered with Connection:
// close (a stopping edge's Status 1) makes the phone send the next one on
// a new connection that resumes its TLS session; the server reads the
// phone's hand-written request as an EAS Ping.
func TestPhonePingReconnectsAsADrainedPhone(t *testing.T) {
	ca, key := testCA(t)
	certs, err := Mint(ca, key, MintOptions{N: 2})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bad []string
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/Microsoft-Server-ActiveSync" || q.Get("Cmd") != "Ping" ||
			q.Get("hold") != "7" || q.Get("DeviceId") == "" || r.Header.Get("MS-ASProtocolVersion") != "14.1" ||
			r.Header.Get("Content-Type") != "application/vnd.ms-sync.wbxml" || len(body) != 200 || len(r.TLS.PeerCertificates) == 0 {
			mu.Lock()
			bad = append(bad, r.Method+" "+r.URL.String())
			mu.Unlock()
		}
		w.Header().Set("Connection", "close") // the drained Ping's answer
		w.WriteHeader(http.StatusOK)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	startMTLS(t, srv, ca)
	res, err := Run(context.Background(), Config{
		Target: srv.URL, Certs: NewRotation(certs), Mode: KeepAlive, Kind: Ping, Hold: 7 * time.Second,
		Concurrency: 2, N: 20, Duration: 20 * time.Second, BodySize: 200, Resume: true, Client: PhoneClient,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 20 || len(res.Errors) != 0 {
		t.Fatalf("ok %d errors %v, want 20 and none", res.OK, res.Errors)
	}
	if len(bad) != 0 {
		t.Fatalf("the server did not read %d requests as the phone's Ping: %v", len(bad), bad)
	}
	if n := conns.Load(); n != 20 {
		t.Fatalf("%d connections for 20 Pings answered with Connection: close, want one each", n)
	}
	if res.Handshakes != 2 || res.Resumed != 18 {
		t.Fatalf("full handshakes %d resumed %d, want 2 (one per phone) and 18", res.Handshakes, res.Resumed)
	}
}

// TestPhoneHeldPingEndsWithTheRun: a Ping the server never answers is cut
// by the run's end, not counted as an error, and Run returns.
func TestPhoneHeldPingEndsWithTheRun(t *testing.T) {
	ca, key := testCA(t)
	certs, err := Mint(ca, key, MintOptions{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	startMTLS(t, srv, ca)
	t.Cleanup(func() { close(release) })
	res, err := Run(context.Background(), Config{
		Target: srv.URL, Certs: NewRotation(certs), Mode: KeepAlive, Kind: Ping, Hold: time.Hour,
		Concurrency: 1, Duration: 300 * time.Millisecond, BodySize: 200, Client: PhoneClient,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 0 || res.OK != 0 || len(res.Errors) != 0 {
		t.Fatalf("requests %d ok %d errors %v, want the cut Ping uncounted", res.Requests, res.OK, res.Errors)
	}
}
