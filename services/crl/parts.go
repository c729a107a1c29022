package crl

import (
	"google.golang.org/protobuf/proto"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/rpc"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// A snapshot goes to an edge that accepts parts (every edge of this
// version) as messages of at most rpc.MaxPartBytes, so a CRL of any size
// fits the role-to-role message limit. Parts were chosen over deltas keyed
// by CRL number by measurement (docs/benchmarks.md, "CRL snapshot to the
// edge"): the full 1,000,000-serial snapshot reaches an edge and is in
// force in well under the 2 s aim, and a CRL changes once per refresh
// interval, so the bytes deltas would save are spent once a day per edge,
// while deltas need the role to keep old versions and both sides a resync
// path on a gap — a second way to be wrong about revocation.

// partOverhead bounds the bytes one repeated-bytes element adds to its
// serial: a tag byte and a length varint of at most 3 bytes.
const partOverhead = 4

// snapshotParts cuts snap into parts of at most maxBytes each (the budget
// covers the serials; an issuer's header is counted too). With packed the
// serials of a chunk go into its packed_serials, else into revoked_serials,
// whose slices alias the indexes' immutable memory.
func snapshotParts(version uint64, snap *crl.Snapshot, maxBytes int, packed bool) []*crlv1.WatchSnapshotsResponse {
	var parts []*crlv1.WatchSnapshotsResponse
	cur := &crlv1.WatchSnapshotsResponse{Version: version}
	size := 16 // version, part and parts
	flush := func() {
		parts = append(parts, cur)
		cur = &crlv1.WatchSnapshotsResponse{Version: version}
		size = 16
	}
	for _, ix := range snap.Indexes() {
		header := issuerHeader(ix)
		hsize := proto.Size(header) + 8
		if size+hsize > maxBytes && len(cur.Crls) > 0 {
			flush()
		}
		chunk := proto.CloneOf(header)
		cur.Crls = append(cur.Crls, chunk)
		size += hsize
		inChunk := 0
		for serial := range ix.All() {
			n := len(serial) + partOverhead
			if size+n > maxBytes && inChunk > 0 {
				flush()
				chunk = proto.CloneOf(header)
				cur.Crls = append(cur.Crls, chunk)
				size += hsize
				inChunk = 0
			}
			if packed {
				chunk.PackedSerials = crl.AppendPacked(chunk.PackedSerials, serial)
			} else {
				chunk.RevokedSerials = append(chunk.RevokedSerials, serial)
			}
			inChunk++
			size += n
		}
	}
	parts = append(parts, cur)
	for i, p := range parts {
		p.Part, p.Parts = uint32(i+1), uint32(len(parts))
	}
	return parts
}

// partsOf returns the parts of snap at the wire version, packed or not,
// built once per snapshot and form and shared by every stream (messages are
// not modified after they are built, so concurrent marshalling is safe).
func (s *Service) partsOf(snap *crl.Snapshot, packed bool) []*crlv1.WatchSnapshotsResponse {
	v := s.wireVersion(snap)
	s.msgMu.Lock()
	defer s.msgMu.Unlock()
	cache := &s.parts
	if packed {
		cache = &s.packedParts
	}
	if len(*cache) > 0 && (*cache)[0].GetVersion() == v {
		return *cache
	}
	*cache = snapshotParts(v, snap, rpc.MaxPartBytes, packed)
	return *cache
}
