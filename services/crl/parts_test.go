package crl

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	pkgcrl "github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/rpc"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

func TestSnapshotParts(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	big := crltest.NewCA(t, "Big CA", now)
	small := crltest.NewCA(t, "Small CA", now)
	index := func(ca *crltest.CA, n int) *pkgcrl.Index {
		c, err := pkgcrl.Parse(ca.LargeCRL(t, n, 1, now, now.Add(time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		return c.Index(ca.Cert, "http://pki/"+ca.Cert.Subject.CommonName, now)
	}
	bigIx, smallIx := index(big, 150_000), index(small, 3)
	tests := []struct {
		name     string
		snap     *pkgcrl.Snapshot
		maxBytes int
		minParts int
	}{
		{"empty", pkgcrl.NewSnapshot(1), rpc.MaxPartBytes, 1},
		{"small", pkgcrl.NewSnapshot(1, smallIx), rpc.MaxPartBytes, 1},
		{"150,000 serials and a small issuer", pkgcrl.NewSnapshot(1, smallIx, bigIx, index(small, 2)), rpc.MaxPartBytes, 3},
		{"tiny parts", pkgcrl.NewSnapshot(1, bigIx, smallIx), 64 << 10, 40},
	}
	for _, tc := range tests {
		for _, packed := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "", true: " packed"}[packed], func(t *testing.T) {
				checkParts(t, snapshotParts(9, tc.snap, tc.maxBytes, packed), tc.snap, tc.maxBytes, tc.minParts, packed)
			})
		}
	}
}

// checkParts checks parts against snap: numbering, size, serial_count and
// every serial sent once, in the form asked for.
func checkParts(t *testing.T, parts []*crlv1.WatchSnapshotsResponse, snap *pkgcrl.Snapshot, maxBytes, minParts int, packed bool) {
	t.Helper()
	if len(parts) < minParts {
		t.Fatalf("%d parts, want at least %d", len(parts), minParts)
	}
	got := map[string]int{}
	for i, p := range parts {
		if p.GetVersion() != 9 || p.GetPart() != uint32(i+1) || p.GetParts() != uint32(len(parts)) {
			t.Fatalf("part %d: version %d part %d/%d", i, p.GetVersion(), p.GetPart(), p.GetParts())
		}
		if n := proto.Size(p); n > maxBytes {
			t.Fatalf("part %d is %d bytes, over %d", i+1, n, maxBytes)
		}
		for _, c := range p.GetCrls() {
			n, err := pkgcrl.EachPacked(c.GetPackedSerials(), func([]byte) {})
			repeated := len(c.GetRevokedSerials())
			if err != nil || packed && repeated > 0 || !packed && n > 0 {
				t.Fatalf("packed %v: %d packed (%v), %d repeated", packed, n, err, repeated)
			}
			got[c.GetIssuer()] += repeated + n
			if int(c.GetSerialCount()) != snap.Index(pkgcrl.IssuerKey(c.GetIssuerKey())).Len() {
				t.Fatalf("serial_count %d", c.GetSerialCount())
			}
		}
	}
	for _, ix := range snap.Indexes() {
		if got[ix.Meta().Issuer] != ix.Len() {
			t.Fatalf("%s: %d serials sent, want %d", ix.Meta().Issuer, got[ix.Meta().Issuer], ix.Len())
		}
	}
}

// TestWatchSnapshotsInParts streams a 250,000-serial snapshot (about 5 MB,
// over gRPC's default 4 MiB) to a client with the default receive limit:
// every message fits when the client accepts parts.
func TestWatchSnapshotsInParts(t *testing.T) {
	f := newFixture(t)
	f.cdp.serve(f.ca.LargeCRL(t, 250_000, 1, f.now.Add(-time.Minute), f.now.Add(time.Hour)))
	// A minute to download the 6 MB CRL: under -race on a busy machine
	// the fixture's 5 s is not always enough.
	s, err := New(role.Deps{Logger: slog.New(slog.DiscardHandler)}, WithConfig(f.config(t)),
		WithTrusted(func() []*x509.Certificate { return []*x509.Certificate{f.ca.Cert} }),
		WithFetcher(&fetch.Fetcher{Timeout: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(rpc.ServerOptions(nil, nil)...)
	s.RegisterGRPC(gs)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), append(rpc.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := crlv1.NewRevocationServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, req := range []*crlv1.WatchSnapshotsRequest{{AcceptParts: true, AcceptPacked: true}, {AcceptParts: true}, {}} {
		accept := req.GetAcceptParts()
		st, err := client.WatchSnapshots(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for {
			m, err := st.Recv()
			if err != nil {
				if accept {
					t.Fatalf("in parts: %v", err)
				}
				break // one message over the limit: what an edge of the old version gets
			}
			if !accept {
				t.Fatal("a 5 MB snapshot in one message got through the 4 MiB limit")
			}
			for _, c := range m.GetCrls() {
				n, err := pkgcrl.EachPacked(c.GetPackedSerials(), func([]byte) {})
				if err != nil || req.GetAcceptPacked() != (n > 0) {
					t.Fatalf("accept_packed %v: %d packed serials (%v)", req.GetAcceptPacked(), n, err)
				}
				total += len(c.GetRevokedSerials()) + n
			}
			if m.GetPart() == m.GetParts() {
				break
			}
		}
		if accept && total != 250_000 {
			t.Fatalf("%d serials received, want 250,000", total)
		}
	}
}
