package suite

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/rpc"
)

// addrListener is a net.Listener that only reports an address.
type addrListener struct {
	net.Listener
	addr net.Addr
}

func (l addrListener) Addr() net.Addr { return l.addr }

// TestExposureRefusesPlaintextOffLoopback: segmesh.grpc.listen without a
// certificate used to serve plaintext on any address with a warning; now
// only loopback or a declared mesh may.
func TestExposureRefusesPlaintextOffLoopback(t *testing.T) {
	tests := []struct {
		name    string
		gc      config.GRPC
		addr    string
		wantErr string
		opts    int
	}{
		{"plaintext on a pod address", config.GRPC{}, "10.0.0.7:9443", "non-loopback", 0},
		{"plaintext on loopback", config.GRPC{}, "127.0.0.1:9443", "", 0},
		{"mesh on a pod address", config.GRPC{MeshProvidesMTLS: true, AllowedPeers: []string{"spiffe://x/edge"}}, "10.0.0.7:9443", "", 2},
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tcp, err := net.ResolveTCPAddr("tcp", tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			opts, err := exposure(tt.gc, rpc.TLSFiles{}, addrListener{addr: tcp}, log, nil)
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr == "" && len(opts) != tt.opts:
				t.Fatalf("%d server options, want %d (interceptors present iff an allow-list applies)", len(opts), tt.opts)
			}
		})
	}
}
