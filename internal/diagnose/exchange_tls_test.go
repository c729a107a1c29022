package diagnose

import (
	"crypto/tls"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/services/edge"
)

// TestExchangeClientTrustsWhatTheEdgeTrusts: diagnose's Exchange client and
// the edge's upstream TLS come from one builder (edge.ExchangeTLS), so for
// each segmesh.edge.exchangeCaFile both reach the same verdict on the same
// Exchange: its own CA passes, another CA fails the handshake, a file with
// no PEM certificate is refused naming the key.
func TestExchangeClientTrustsWhatTheEdgeTrusts(t *testing.T) {
	exchange := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer exchange.Close()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pemOf := func(s *httptest.Server) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	}
	cases := []struct {
		name, caFile string
		wantErr      string // from the builder
		wantTrusted  bool
	}{
		{name: "Exchange's CA", caFile: write("right.pem", pemOf(exchange)), wantTrusted: true},
		{name: "another CA", caFile: write("other.pem", testpki.NewCA(t, "Another CA").PEM())},
		{name: "no PEM", caFile: write("empty.pem", []byte("not a certificate")), wantErr: "segmesh.edge.exchangeCaFile"},
		{name: "missing file", caFile: filepath.Join(dir, "missing.pem"), wantErr: "segmesh.edge.exchangeCaFile"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Segmesh.Edge.ExchangeCAFile = tc.caFile
			st := &state{cfg: &cfg}
			client, err := st.httpClient()
			edgeTLS, edgeErr := edge.ExchangeTLS(cfg.Resolve(tc.caFile))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || edgeErr == nil || edgeErr.Error() != err.Error() {
					t.Fatalf("diagnose: %v; edge: %v; want both refusing with %q", err, edgeErr, tc.wantErr)
				}
				return
			}
			if err != nil || edgeErr != nil {
				t.Fatalf("diagnose: %v; edge: %v", err, edgeErr)
			}
			resp, err := client.Get(exchange.URL)
			if err == nil {
				resp.Body.Close()
			}
			conn, edgeErr := tls.Dial("tcp", exchange.Listener.Addr().String(), edgeTLS.Clone())
			if edgeErr == nil {
				conn.Close()
			}
			if (err == nil) != tc.wantTrusted || (edgeErr == nil) != tc.wantTrusted {
				t.Fatalf("diagnose: %v; edge: %v; want trusted=%v from both", err, edgeErr, tc.wantTrusted)
			}
		})
	}
}
