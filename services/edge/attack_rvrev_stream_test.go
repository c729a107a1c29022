package edge

import (
	"errors"
	"log/slog"
	"math/big"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/segmesh/segmesh/pkg/crl"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// publishNumbered makes f's next snapshot ca's CRL number n (thisUpdate
// n hours after at) revoking serials, as a crl role sends it.
func (f *fakeCRL) publishNumbered(ca *testCA, n int64, at time.Time, serials ...int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := crl.KeyOf(ca.cert.RawSubject, ca.cert.SubjectKeyId)
	ic := &crlv1.IssuerCRL{Issuer: ca.cert.Subject.String(), IssuerKey: k[:], SourceUrl: "http://crl.lab.test/ca.crl",
		CrlNumber: strconv.FormatInt(n, 10), ThisUpdate: timestamppb.New(at.Add(time.Duration(n) * time.Hour)),
		NextUpdate: timestamppb.New(at.Add(time.Duration(n+240) * time.Hour))}
	for _, s := range serials {
		ic.RevokedSerials = append(ic.RevokedSerials, big.NewInt(s).Bytes())
	}
	f.current = &crlv1.WatchSnapshotsResponse{Version: f.current.GetVersion() + 1, Crls: []*crlv1.IssuerCRL{ic}}
	close(f.changed)
	f.changed = make(chan struct{})
}

// TestAttackOlderSnapshotAfterAStreamPanic: the edge panicked on a
// snapshot (CRL #6, revoking 0x77 and 0x78) and dropped it, keeping CRL
// #5 (revoking 0x77). The stream is opened again, and the crl role now
// sends an older CRL of the issuer: a crl role restarted on a state
// directory that lost its newest CRL, or a mirror that lags (#3, revoking
// nothing; or #4 revoking 0x78 only). The recovery must not lower the
// edge's floor: the held #5 still decides for 0x77 (the older CRL is
// refused as a rollback), whatever came in between panicked. Held: the
// panicking snapshot never reaches crl.Merge, and the reconnection goes
// through the same Merge as any snapshot.
func TestAttackOlderSnapshotAfterAStreamPanic(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		older []int64 // what the older CRL #n revokes; n is 3 + len
	}{
		{"an older CRL revoking nothing", nil},
		{"an older CRL revoking another serial", []int64{0x78}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := newStreamRig(t, at.Add(24*time.Hour), slog.New(slog.DiscardHandler))
			ca, fake, client, r := k.ca, k.fake, k.client, k.r
			revoked := leaf(t, ca.issue(t, certOpts{cn: "lost-phone", serial: 0x77}).Certificate[0])

			fake.publishNumbered(ca, 5, at, 0x77)
			k.watch(t)
			waitFor(t, "CRL #5 in force", func() bool { return r.current() == 1 })

			client.panics.Store(1)
			fake.publishNumbered(ca, 6, at, 0x77, 0x78) // the snapshot that panics
			waitFor(t, "the panic counted", func() bool { return k.panics(t) == 1 })
			// What the reconnected stream gets: older than the held #5.
			fake.publishNumbered(ca, 3+int64(len(tc.older)), at, tc.older...)
			waitFor(t, "the older CRL received and refused", func() bool { return r.rollbacks.Load() >= 1 })
			var rev *RevokedError
			if _, err := r.check(revoked); !errors.As(err, &rev) {
				t.Fatalf("serial 0x77 after the panic and an older CRL: %v; want refused as revoked by the held CRL #5", err)
			}
			if r.panics.pending.Load() {
				// A snapshot was received and merged (its CRL refused as
				// older): the panic no longer holds the stream for broken.
				t.Fatal("the panic still pending after a snapshot was merged")
			}
		})
	}
}
