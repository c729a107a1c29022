package edge

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// RevokedError is a certificate refused by the revocation snapshot.
type RevokedError struct {
	// Serial is the certificate's serial number in hexadecimal.
	Serial string
	// Issuer is the issuer's distinguished name.
	Issuer string
	// Source is the distribution point the issuer's CRL came from.
	Source string
	// FailedClosed reports a refusal because the issuer's CRL is stale and
	// fail-closed is set, not because the serial is listed.
	FailedClosed bool
}

// Error names the serial and the issuer.
func (e *RevokedError) Error() string {
	if e.FailedClosed {
		return fmt.Sprintf("the CRL of issuer %q is past its nextUpdate and segmesh.crl.failClosedOnStale is set (serial %s)", e.Issuer, e.Serial)
	}
	return fmt.Sprintf("certificate serial %s is revoked by issuer %q", e.Serial, e.Issuer)
}

// errNoSnapshot refuses certificates until the first snapshot has arrived.
var errNoSnapshot = errors.New("no revocation snapshot from the crl role yet; certificates are refused until one arrives")

// snapshotOf indexes a streamed snapshot. Revocation times are not on the
// wire; entries carry the zero time.
func snapshotOf(m *crlv1.WatchSnapshotsResponse) *crl.Snapshot {
	idx := make([]*crl.Index, 0, len(m.GetCrls()))
	for _, c := range m.GetCrls() {
		var k crl.IssuerKey
		if len(c.GetIssuerKey()) != len(k) {
			continue
		}
		copy(k[:], c.GetIssuerKey())
		total := 0
		for _, s := range c.GetRevokedSerials() {
			total += len(s)
		}
		b := crl.NewBuilder(len(c.GetRevokedSerials()), total)
		for _, s := range c.GetRevokedSerials() {
			b.Add(s, time.Time{}, 0)
		}
		meta := crl.Meta{Key: k, Issuer: c.GetIssuer(), Source: c.GetSourceUrl(), Stale: c.GetStale(), FailClosed: c.GetFailClosed()}
		if t := c.GetThisUpdate(); t != nil {
			meta.ThisUpdate = t.AsTime()
		}
		if t := c.GetNextUpdate(); t != nil {
			meta.NextUpdate = t.AsTime()
		}
		idx = append(idx, b.Build(meta))
	}
	return crl.NewSnapshot(m.GetVersion(), idx...)
}

// revocation holds the snapshot the crl role streams and answers checks
// from it without a lock.
type revocation struct {
	enabled bool
	log     *slog.Logger
	set     crl.Set
	// gen counts snapshots received, from 1; 0 means none yet.
	gen   atomic.Uint64
	first chan struct{}
	// minBackoff and maxBackoff bound the reconnection delay.
	minBackoff, maxBackoff time.Duration
}

func newRevocation(enabled bool, log *slog.Logger) *revocation {
	return &revocation{enabled: enabled, log: log, first: make(chan struct{}), minBackoff: 250 * time.Millisecond, maxBackoff: 30 * time.Second}
}

// store makes m the current snapshot.
func (r *revocation) store(m *crlv1.WatchSnapshotsResponse) {
	r.set.Store(snapshotOf(m))
	if r.gen.Add(1) == 1 {
		close(r.first)
	}
}

// ready returns why revocation checks cannot be answered yet, or nil.
func (r *revocation) ready() error {
	if r.enabled && r.gen.Load() == 0 {
		return errNoSnapshot
	}
	return nil
}

// current returns the current snapshot generation (0 before the first).
func (r *revocation) current() uint64 { return r.gen.Load() }

// check returns the generation it answered from and nil when c may be
// used; a *RevokedError when it is revoked; errNoSnapshot before the first
// snapshot. An issuer without a CRL in the snapshot is allowed: the crl role
// decides which CRLs exist (as SEG, which checks the configured CDPs only).
//
// The issuer is looked up by pkg/crl's key (issuer name and authority key
// identifier) and, failing that, by the name alone, which is what the proto
// documents for issuer_key.
func (r *revocation) check(c *x509.Certificate) (uint64, error) {
	if !r.enabled {
		return 0, nil
	}
	gen := r.gen.Load()
	s := r.set.Load()
	if s == nil {
		return 0, errNoSnapshot
	}
	revoked, info, known := s.IsRevokedKey(crl.CertIssuerKey(c), c)
	if !known {
		revoked, info, _ = s.IsRevokedKey(crl.KeyOf(c.RawIssuer, nil), c)
	}
	if revoked {
		return gen, &RevokedError{Serial: c.SerialNumber.Text(16), Issuer: info.Issuer, Source: info.Source, FailedClosed: info.FailedClosed}
	}
	return gen, nil
}

// watch consumes the crl role's snapshot stream until ctx ends,
// reconnecting with jittered exponential backoff. The last snapshot stays in
// force while the stream is down.
func (r *revocation) watch(ctx context.Context, client crlv1.RevocationServiceClient) {
	backoff := r.minBackoff
	for ctx.Err() == nil {
		got, err := r.stream(ctx, client)
		if ctx.Err() != nil {
			return
		}
		if got {
			backoff = r.minBackoff
		}
		r.log.Warn("revocation stream broken; keeping the last snapshot and reconnecting",
			"err", err, "retry_in", backoff, "snapshot_version", r.set.Load().Version())
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, r.maxBackoff)
	}
}

// stream reads one stream until it breaks; got reports whether it delivered
// a snapshot.
func (r *revocation) stream(ctx context.Context, client crlv1.RevocationServiceClient) (got bool, err error) {
	st, err := client.WatchSnapshots(ctx, &crlv1.WatchSnapshotsRequest{KnownVersion: r.set.Load().Version()})
	if err != nil {
		return false, fmt.Errorf("watch snapshots: %w", err)
	}
	for {
		m, err := st.Recv()
		if err != nil {
			return got, fmt.Errorf("receive snapshot: %w", err)
		}
		got = true
		r.store(m)
		r.log.Info("revocation snapshot", "version", m.GetVersion(), "issuers", len(m.GetCrls()))
	}
}
