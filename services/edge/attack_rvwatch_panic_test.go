package edge

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/grpc"

	"github.com/segmesh/segmesh/internal/testlog"
	"github.com/segmesh/segmesh/internal/testpoll"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// panickingCRLClient is the crl role's client whose streams panic in Recv
// while panics is above 0, as a decoding bug meeting a malformed snapshot
// would: each panic uses one up (-1: every Recv panics).
type panickingCRLClient struct {
	crlv1.RevocationServiceClient
	panics  atomic.Int64
	streams atomic.Int64 // WatchSnapshots calls
	// waiting makes the next Recv of a stream that already delivered a
	// snapshot panic before anything arrives, once: a fault of the
	// transport while the edge holds the crl role's current snapshot.
	waiting atomic.Bool
	// panicVersion, when not 0: a snapshot of this version panics in Recv
	// every time it is received (the decision is the snapshot's, not the
	// moment's: a test switching panics off cannot let through a snapshot
	// received before it published the next one).
	panicVersion atomic.Uint64
	// mu guards known: each stream's known_version, in order.
	mu    sync.Mutex
	known []uint64
}

func (c *panickingCRLClient) WatchSnapshots(ctx context.Context, in *crlv1.WatchSnapshotsRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[crlv1.WatchSnapshotsResponse], error) {
	c.mu.Lock()
	c.known = append(c.known, in.GetKnownVersion())
	c.mu.Unlock()
	c.streams.Add(1)
	st, err := c.RevocationServiceClient.WatchSnapshots(ctx, in, opts...)
	if err != nil {
		return nil, err
	}
	return &panickingStream{ServerStreamingClient: st, c: c}, nil
}

type panickingStream struct {
	grpc.ServerStreamingClient[crlv1.WatchSnapshotsResponse]
	c         *panickingCRLClient
	delivered bool
}

func (s *panickingStream) Recv() (*crlv1.WatchSnapshotsResponse, error) {
	if s.delivered && s.c.waiting.CompareAndSwap(true, false) {
		panic("nil pointer dereference waiting for the next snapshot")
	}
	m, err := s.ServerStreamingClient.Recv()
	if err != nil {
		return m, err
	}
	s.delivered = true
	if v := s.c.panicVersion.Load(); v != 0 && m.GetVersion() == v {
		panic("index out of range decoding snapshot version " + strconv.FormatUint(v, 10))
	}
	for {
		n := s.c.panics.Load()
		if n == 0 {
			return m, nil
		}
		if n < 0 || s.c.panics.CompareAndSwap(n, n-1) {
			panic("index out of range decoding snapshot version " + strings.Repeat("9", 3))
		}
	}
}

// TestAttackPanicInTheRevocationStream: the edge decodes the crl role's
// snapshot stream (parts, packed serials, index building) in a goroutine
// of its own, which nothing recovered: a malformed snapshot, or a bug
// decoding it, ended the edge process (this test crashed the test binary
// on main). Now the edge fails closed: the last good snapshot stays in
// force (none: certificates are refused as with no revocation data), the
// stream is opened again, and the panic is logged at error level with its
// stack, counted in segmesh_background_panics{task="revocation_stream"},
// and shown on /status and /readyz until a snapshot is put in force
// again. A crl role whose every snapshot panics keeps the edge on the
// last good one and makes it not ready once that outlasts the refresh
// interval: reconnecting does not count as a working stream.
func TestAttackPanicInTheRevocationStream(t *testing.T) {
	tests := []struct {
		name string
		// before: a good snapshot revoking 0x77 is in force before the
		// panics start.
		before bool
		// recovers: the panics stop once the edge was seen failing
		// closed; otherwise every snapshot keeps panicking.
		recovers bool
	}{
		{"after a good snapshot, then recovers", true, true},
		{"before any snapshot, then recovers", false, true},
		{"after a good snapshot, every snapshot", true, false},
		{"before any snapshot, every snapshot", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &syncBuffer{}
			k := newStreamRig(t, time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC), slog.New(slog.NewTextHandler(logs, nil)))
			ca, fake, client, clock, r := k.ca, k.fake, k.client, k.clock, k.r
			revoked := leaf(t, ca.issue(t, certOpts{cn: "lost-phone", serial: 0x77}).Certificate[0])
			later := leaf(t, ca.issue(t, certOpts{cn: "stolen-phone", serial: 0x78}).Certificate[0])

			if tc.before {
				fake.revoke(ca, 0x77)
			} else {
				client.panics.Store(-1)
				fake.revoke(ca, 0x77, 0x78) // the first snapshot, which panics
			}
			k.watch(t)
			if tc.before {
				waitFor(t, "the good snapshot", func() bool { return r.current() == 1 })
				client.panics.Store(-1)
				fake.revoke(ca, 0x77, 0x78) // the snapshot that panics
			}
			waitFor(t, "the panic counted", func() bool { return k.panics(t) >= 1 })

			// Fail closed: the last good snapshot, or none, stays in force.
			if tc.before {
				var rev *RevokedError
				if _, err := r.check(revoked); !errors.As(err, &rev) {
					t.Fatalf("the certificate revoked in the last good snapshot: %v, want refused as revoked", err)
				}
			} else if _, err := r.check(revoked); !errors.Is(err, errNoSnapshot) {
				t.Fatalf("before any snapshot: %v, want refused (no snapshot)", err)
			}
			log := logs.String()
			for _, want := range []string{"level=ERROR", "task=revocation_stream", "index out of range decoding snapshot", "goroutine ", "stream"} {
				if !strings.Contains(log, want) {
					t.Fatalf("log lacks %q:\n%s", want, log)
				}
			}
			// The stream is opened again, and panics again: that must not
			// pass for a working stream.
			waitFor(t, "a second panic", func() bool {
				return client.streams.Load() >= 2 && k.panics(t) >= 2
			})
			if gen, want := r.current(), map[bool]uint64{true: 1, false: 0}[tc.before]; gen != want {
				t.Fatalf("generation %d, want %d: a snapshot that panicked was put in force", gen, want)
			}
			if n := strings.Join(r.notes(), "\n"); !strings.Contains(n, "made the edge panic") {
				t.Fatalf("/readyz's notes do not show the stream's panics: %q", n)
			}
			statusShows(t, r, true)
			if !tc.recovers {
				clock.Add(k.cfg.CRLRefreshInterval() + time.Minute)
				if err := r.ready(); err == nil || !strings.Contains(err.Error(), "panic") {
					t.Fatalf("a stream whose every snapshot panics for longer than the refresh interval: ready() = %v, want not ready naming the panic", err)
				}
				return
			}
			// The panics stop: the snapshot is put in force; the notes no
			// longer show the panic, /status keeps its count.
			client.panics.Store(0)
			waitFor(t, "the snapshot in force after the panic", func() bool {
				_, err := r.check(later)
				var rev *RevokedError
				return errors.As(err, &rev)
			})
			if n := strings.Join(r.notes(), "\n"); strings.Contains(n, "panic") {
				t.Fatalf("the note outlived the stream's recovery: %q", n)
			}
			if err := r.ready(); err != nil {
				t.Fatalf("ready after the recovery: %v", err)
			}
			statusShows(t, r, false)
		})
	}
}

// TestAttackPanicWithTheCurrentSnapshotInForce (ipanic3, attacker review
// item a): the stream panicked where no newer snapshot was being received
// (after the snapshot was put in force, or while waiting for the next
// one), so the edge held the crl role's current snapshot. The reconnected
// stream asked for what the edge held (known_version), got only headers
// (the crl role sends nothing while the caller is current), and the panic
// stayed pending: the edge was not ready (stream_broken) from one refresh
// interval on until a CRL changed, an admin paged for nothing. On main
// this timed out waiting for the edge to be ready. Now the reconnection
// after a panic asks for the current snapshot again, whose arrival clears
// the panic; the certificate it revokes stays refused throughout.
func TestAttackPanicWithTheCurrentSnapshotInForce(t *testing.T) {
	tests := []struct {
		name string
		// arm makes the next panic happen; the log handler's is armed in
		// onLog, the stream's in client.
		arm func(onLog *atomic.Bool, client *panickingCRLClient)
	}{
		{"after the snapshot was put in force", func(onLog *atomic.Bool, _ *panickingCRLClient) { onLog.Store(true) }},
		{"waiting for the next snapshot", func(_ *atomic.Bool, client *panickingCRLClient) { client.waiting.Store(true) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var onLog atomic.Bool
			k := newStreamRig(t, time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC), slog.New(testlog.PanicOn{Handler: slog.NewTextHandler(io.Discard, nil),
				Prefix: "revocation snapshot", Value: "log handler panicked on ", Armed: &onLog, Once: true}))
			r := k.r
			revoked := leaf(t, k.ca.issue(t, certOpts{cn: "lost-phone", serial: 0x77}).Certificate[0])
			k.fake.revoke(k.ca, 0x77)
			tc.arm(&onLog, k.client)
			k.watch(t)
			waitFor(t, "the panic counted", func() bool { return k.panics(t) == 1 })
			var rev *RevokedError
			if _, err := r.check(revoked); !errors.As(err, &rev) {
				t.Fatalf("the certificate revoked by the snapshot in force, after the panic: %v, want refused as revoked", err)
			}
			// A refresh interval later, with the stream reopened and the
			// crl role's snapshot unchanged, the edge is up to date.
			k.clock.Add(k.cfg.CRLRefreshInterval() + time.Minute)
			if !testpoll.Within(5*time.Second, func() bool { return r.ready() == nil }) {
				t.Fatalf("the edge holds the crl role's current snapshot and its stream is open again, yet: %v (streams opened: %d)", r.ready(), k.client.streams.Load())
			}
			if n := strings.Join(r.notes(), "\n"); strings.Contains(n, "panic") {
				t.Fatalf("the note outlived the stream's recovery: %q", n)
			}
			statusShows(t, r, false)
			if _, err := r.check(revoked); !errors.As(err, &rev) {
				t.Fatalf("the revoked certificate after the reconnection: %v, want refused as revoked", err)
			}
		})
	}
}

// streamRig is an edge's revocation on a test clock, fed by a fake crl
// role through a client whose streams can panic.
type streamRig struct {
	ca     *testCA
	fake   *fakeCRL
	client *panickingCRLClient
	clock  *testClock
	cfg    config.Config
	r      *revocation
	reader *sdkmetric.ManualReader
}

// newStreamRig builds the rig with revocation on, its clock at now,
// logging to log; watch starts the stream.
func newStreamRig(t testing.TB, now time.Time, log *slog.Logger) *streamRig {
	t.Helper()
	k := &streamRig{ca: newCA(t, "Device CA"), fake: newFakeCRL(), clock: &testClock{t: now},
		cfg: config.Default(), reader: sdkmetric.NewManualReader()}
	k.client = &panickingCRLClient{RevocationServiceClient: crlv1.NewRevocationServiceClient(
		serveGRPC(t, func(s *grpc.Server) { crlv1.RegisterRevocationServiceServer(s, k.fake) }))}
	k.cfg.Gateway.RevocationEnabled = true
	k.cfg.RequireClientCertificate = true
	k.cfg.Segmesh.Edge.ExchangeURLs = []string{"https://exchange.lab.test"}
	s, err := newService(role.Deps{Config: &k.cfg, Logger: log, Meter: sdkmetric.NewMeterProvider(sdkmetric.WithReader(k.reader)).Meter("segmesh/edge")},
		options{now: k.clock.Now, crlBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	k.r = s.revocation
	k.r.maxBackoff = 5 * time.Millisecond
	return k
}

// watch runs the edge's watch of the stream until the test ends.
func (k *streamRig) watch(t testing.TB) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() { k.r.watch(ctx, k.client) })
}

// panics returns segmesh_background_panics{task="revocation_stream"}.
func (k *streamRig) panics(t testing.TB) int64 {
	t.Helper()
	return collectInts(t, k.reader)["segmesh_background_panics/revocation_stream"]
}

// statusShows checks the revocation status names the stream's panics, and
// whether a snapshot is still waiting to be put in force after one.
func statusShows(t testing.TB, r *revocation, pending bool) {
	t.Helper()
	b, err := json.Marshal(r.status())
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Panics  int64  `json:"streamPanics"`
		Last    string `json:"lastStreamPanic"`
		Pending bool   `json:"streamPanicPending"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Panics < 1 || st.Last == "" || st.Pending != pending {
		t.Fatalf("/status revocation: %s, want streamPanics, lastStreamPanic and streamPanicPending %v", b, pending)
	}
}

// leaf parses a DER certificate.
func leaf(t testing.TB, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
