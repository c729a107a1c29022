package edge

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// watch consumes the crl role's snapshot stream until ctx ends,
// reconnecting with jittered exponential backoff. The last snapshot stays in
// force while the stream is down; readiness reports the outage once it
// outlasts the refresh interval.
func (r *revocation) watch(ctx context.Context, client crlv1.RevocationServiceClient) {
	backoff := r.minBackoff
	for ctx.Err() == nil {
		got, err := r.guardedStream(ctx, client)
		if ctx.Err() != nil {
			return
		}
		r.brokenSince.CompareAndSwap(0, r.now().UnixNano())
		if got {
			backoff = r.minBackoff
		}
		r.log.Warn("revocation stream broken; keeping the last snapshot and reconnecting",
			"err", err, "retry_in", backoff, "snapshot_version", r.wire.Load())
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
// a snapshot. The stream counts as up once the crl role's response headers
// arrive (it sends them at once, even when the caller holds its version),
// unless the last stream panicked: then once a snapshot is put in force.
// After a panic it asks for the crl role's current snapshot even if the
// edge holds that version (known_version 0): a panic inside Recv cannot
// say whether a newer snapshot was arriving or the edge was up to date,
// and a crl role with nothing newer would send nothing, keeping the panic
// pending, and the edge not ready, until a CRL changed. The snapshot that
// comes goes through crl.Merge as any other: an older CRL is still
// refused as a rollback. The call ends with stream, a panic included.
func (r *revocation) stream(ctx context.Context, client crlv1.RevocationServiceClient) (got bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	known := r.wire.Load()
	if r.panics.pending.Load() {
		known = 0
	}
	st, err := client.WatchSnapshots(ctx, &crlv1.WatchSnapshotsRequest{KnownVersion: known, AcceptParts: true, AcceptPacked: true})
	if err != nil {
		return false, fmt.Errorf("watch snapshots: %w", err)
	}
	if _, err := st.Header(); err != nil {
		return false, fmt.Errorf("watch snapshots: %w", err)
	}
	if !r.panics.pending.Load() {
		r.brokenSince.Store(0)
	}
	var a assembler
	for {
		m, err := st.Recv()
		if err != nil {
			return got, fmt.Errorf("receive snapshot: %w", err)
		}
		incoming, done, err := a.add(m)
		if err != nil {
			return got, fmt.Errorf("snapshot version %d: %w", m.GetVersion(), err)
		}
		if !done {
			continue
		}
		got = true
		r.apply(m.GetVersion(), incoming)
		r.panics.applied(r)
		r.log.Info("revocation snapshot", "version", m.GetVersion(), "issuers", len(incoming), "parts", max(m.GetParts(), 1))
	}
}

// assembler builds the indexes of one snapshot from its parts, one issuer
// at a time: each part's serials (packed_serials, else revoked_serials) go
// straight into the issuer's index builder, sized from serial_count, so the
// edge holds the index it builds and one part, never the whole snapshot as
// messages.
type assembler struct {
	version uint64
	part    uint32 // last part received; 0 between snapshots
	parts   uint32 // the parts the snapshot's first part announced
	out     []*crl.Index
	// The issuer (and partition) being built.
	key   crl.IssuerKey
	scope string
	meta  crl.Meta
	want  uint32
	b     *crl.Builder
	added uint32
	// built holds the issuers and partitions started in this snapshot: the
	// crl role sends each once, its chunks in a row.
	built map[builtID]bool
}

// builtID is one issuer's partition in a snapshot being assembled.
type builtID struct {
	key   crl.IssuerKey
	scope string
}

// maxPresize bounds the entries the assembler reserves from a serial_count
// before the serials arrive (4 Mi entries, 128 MiB of records).
const maxPresize = 1 << 22

// errPart is a stream that breaks the parts protocol; the edge reconnects.
var errPart = errors.New("crl role sent a malformed snapshot part")

// add takes one message; done reports that it completed a snapshot, whose
// indexes are returned.
func (a *assembler) add(m *crlv1.WatchSnapshotsResponse) (out []*crl.Index, done bool, err error) {
	switch {
	case m.GetParts() == 0 && a.part != 0:
		return nil, false, fmt.Errorf("%w: a whole snapshot inside parts %d of version %d", errPart, a.part, a.version)
	case m.GetParts() == 0:
		// One message, one snapshot: every issuer is complete.
	case a.part == 0 && m.GetPart() != 1, a.part != 0 && (m.GetVersion() != a.version || m.GetPart() != a.part+1), m.GetPart() > m.GetParts():
		return nil, false, fmt.Errorf("%w: part %d/%d of version %d after part %d of version %d", errPart, m.GetPart(), m.GetParts(), m.GetVersion(), a.part, a.version)
	case a.part != 0 && m.GetParts() != a.parts:
		// A count that shrinks would end the snapshot early and apply it
		// without the issuers of the parts never sent.
		return nil, false, fmt.Errorf("%w: part %d/%d of version %d after a first part announcing %d", errPart, m.GetPart(), m.GetParts(), m.GetVersion(), a.parts)
	default:
		a.version, a.part, a.parts = m.GetVersion(), m.GetPart(), m.GetParts()
	}
	for _, c := range m.GetCrls() {
		var k crl.IssuerKey
		if len(c.GetIssuerKey()) != len(k) {
			return nil, false, fmt.Errorf("%w: issuer %q has a %d-byte key", errPart, c.GetIssuer(), len(c.GetIssuerKey()))
		}
		copy(k[:], c.GetIssuerKey())
		// A partition of an issuer is its own CRL: a chunk of another
		// partition of the same issuer starts a new index, so partitions
		// are never merged into one (and one's number never judges the
		// other's). A crl role that predates partitions sends none.
		if a.b == nil || k != a.key || c.GetPartition() != a.scope {
			if err := a.finish(); err != nil {
				return nil, false, err
			}
			// A partition that comes back after another would be a second
			// index of one (issuer, partition), and only one is kept: its
			// serials would be lost.
			id := builtID{k, c.GetPartition()}
			if a.built[id] {
				return nil, false, fmt.Errorf("%w: issuer %q partition %q sent again after another", errPart, c.GetIssuer(), c.GetPartition())
			}
			if a.built == nil {
				a.built = make(map[builtID]bool)
			}
			a.built[id] = true
			a.start(k, c)
		}
		for _, s := range c.GetRevokedSerials() {
			a.b.Add(s, time.Time{}, 0)
		}
		a.added += uint32(len(c.GetRevokedSerials()))
		n, err := crl.EachPacked(c.GetPackedSerials(), func(s []byte) { a.b.Add(s, time.Time{}, 0) })
		if err != nil {
			return nil, false, fmt.Errorf("%w: issuer %q: %w", errPart, c.GetIssuer(), err)
		}
		a.added += uint32(n)
	}
	if m.GetParts() != 0 && m.GetPart() < m.GetParts() {
		return nil, false, nil
	}
	if err := a.finish(); err != nil {
		return nil, false, err
	}
	out = a.out
	*a = assembler{}
	return out, true, nil
}

// start begins the index of issuer k (and c's partition) from its first
// chunk c.
func (a *assembler) start(k crl.IssuerKey, c *crlv1.IssuerCRL) {
	a.key, a.scope, a.want, a.added = k, c.GetPartition(), c.GetSerialCount(), 0
	a.meta = crl.Meta{Key: k, Issuer: c.GetIssuer(), Source: c.GetSourceUrl(), Stale: c.GetStale(), FailClosed: c.GetFailClosed(),
		Partition: c.GetPartition()}
	if n, ok := new(big.Int).SetString(c.GetCrlNumber(), 10); ok {
		a.meta.Number = n
	}
	if t := c.GetThisUpdate(); t != nil {
		a.meta.ThisUpdate = t.AsTime()
	}
	if t := c.GetNextUpdate(); t != nil {
		a.meta.NextUpdate = t.AsTime()
	}
	if t := c.GetFetchedAt(); t != nil {
		a.meta.FetchedAt = t.AsTime()
	}
	n := int(a.want)
	if n == 0 {
		n = len(c.GetRevokedSerials()) + len(c.GetPackedSerials())/17
	}
	// serial_count sizes the builder up front, within reason: a larger
	// count is checked when the issuer ends, and the builder grows as the
	// serials really arrive.
	a.b = crl.NewBuilder(min(n, maxPresize), 0)
}

// finish completes the issuer being built, checking it got every serial
// its header announced (a crl role that sends serial_count).
func (a *assembler) finish() error {
	if a.b == nil {
		return nil
	}
	if a.want != 0 && a.added != a.want {
		return fmt.Errorf("%w: issuer %q announced %d serials and sent %d", errPart, a.meta.Issuer, a.want, a.added)
	}
	a.out = append(a.out, a.b.Build(a.meta))
	a.b = nil
	return nil
}
