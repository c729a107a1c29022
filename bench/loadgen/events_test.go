package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestErrorLogNamesStageAndEdge checks that every failed request is logged
// with the edge it went to and how far it got: the phase analysis of
// bench/drain.sh depends on it.
func TestErrorLogNamesStageAndEdge(t *testing.T) {
	ca, key := testCA(t)
	certs, err := Mint(ca, key, MintOptions{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	// A port nothing listens on: bind, note it, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()

	cut := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = c.Close() // request read, no answer: the client sees EOF
		}
	}))
	t.Cleanup(cut.Close)
	busy := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	t.Cleanup(busy.Close)
	mtls, _ := tlsServer(t, ca) // wants a client certificate

	tests := []struct {
		name      string
		url       string
		target    string // through the balancer when set
		certs     []tls.Certificate
		wantStage string // or, for the certificate case, StageWrite too
		wantKind  string
		wantEdge  string
	}{
		{"refused", "https://" + closed, closed, nil, StageConnect, "refused", closed},
		// TLS 1.3: the client's side of the handshake ends before the
		// server checks its certificate; the refusal comes as the answer,
		// or before the request is written.
		{"certificate refused", mtls.URL, "", nil, StageWait, "tls", strings.TrimPrefix(mtls.URL, "https://")},
		{"cut after the request", cut.URL, "", certs, StageWait, "eof", strings.TrimPrefix(cut.URL, "https://")},
		{"not 200", busy.URL, "", certs, StageStatus, "http_503", strings.TrimPrefix(busy.URL, "https://")},
	}
	for _, client := range clients {
		for _, tt := range tests {
			t.Run(string(client)+"/"+tt.name, func(t *testing.T) {
				var log bytes.Buffer
				cfg := Config{Target: tt.url, Certs: NewRotation(tt.certs), Mode: Handshake, Kind: Sync,
					Concurrency: 1, N: 2, Duration: 10 * time.Second, BodySize: 200, ErrorLog: &log, Client: client}
				if tt.target != "" {
					b, err := NewBalancer(context.Background(), []string{tt.target}, nil)
					if err != nil {
						t.Fatal(err)
					}
					cfg.Balancer = b
				}
				before := time.Now().UnixMilli()
				res, err := Run(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				lines := strings.Split(strings.TrimSpace(log.String()), "\n")
				if res.OK != 0 || len(lines) != 2 {
					t.Fatalf("ok %d, %d logged errors (%q), want 0 ok and 2 logged", res.OK, len(lines), log.String())
				}
				for _, line := range lines {
					var e ErrorEvent
					if err := json.Unmarshal([]byte(line), &e); err != nil {
						t.Fatalf("log line %q: %v", line, err)
					}
					// A refused TLS 1.3 certificate is the server's alert read as
					// the answer, or, when the request's write races the
					// server's close, a reset or broken pipe at the write.
					refused := tt.name == "certificate refused"
					stageOK := e.Stage == tt.wantStage || refused && e.Stage == StageWrite
					kindOK := e.Kind == tt.wantKind || refused && e.Kind == "reset"
					if !stageOK || e.Edge != tt.wantEdge || !kindOK {
						t.Fatalf("logged %+v, want stage %s edge %s kind %s", e, tt.wantStage, tt.wantEdge, tt.wantKind)
					}
					n := res.Errors[tt.wantKind]
					if refused {
						n += res.Errors["reset"]
					}
					if n != 2 || res.Errors[e.Kind] == 0 {
						t.Fatalf("logged kind %q, counted %v", e.Kind, res.Errors)
					}
					if e.StartMs < before || e.TimeMs < e.StartMs || e.Worker != 0 {
						t.Fatalf("times or worker wrong: %+v (run began %d)", e, before)
					}
				}
			})
		}
	}
}
