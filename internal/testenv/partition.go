package testenv

import (
	"crypto/x509/pkix"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpki"
)

// A partitioned CRL (RFC 5280 5.2.5) at the world's CDP: /part-<name>.crl
// is the site CA's CRL of partition name, with an Issuing Distribution
// Point naming that URL, listing the serials revoked in it. Its CRL number
// is 1000 times the name's first byte plus its entries, so partition "b" is
// always newer than "a": keyed by issuer alone, b would replace a.

// partitionCRL answers a request for path when it names a partition.
func (w *world) partitionCRL(t testing.TB, path string) ([]byte, bool) {
	name, ok := strings.CutPrefix(path, "/part-")
	if !ok {
		return nil, false
	}
	if name, ok = strings.CutSuffix(name, ".crl"); !ok || name == "" {
		return nil, false
	}
	w.mu.Lock()
	revoked := slices.Clone(w.partRevoked[name])
	w.mu.Unlock()
	return w.ca.CRL(t, testpki.CRLOptions{Number: int64(name[0])*1000 + int64(len(revoked)) + 1, ThisUpdate: time.Now().Add(-time.Minute),
		Revoked: revoked, Partition: []string{w.cdp.URL + path}}), true
}

// PartitionURL is the URL of partition name's CRL at the CDP; list it in
// remote.crl.distribution.http.uris (StartWith) to have it fetched.
func (e *Env) PartitionURL(name string) string { return e.w.cdp.URL + "/part-" + name + ".crl" }

// PartitionDevice mints a device certificate of the site's CA naming
// partition part's CRL as its distribution point.
func (e *Env) PartitionDevice(name, upnSAN, part string) Device {
	e.t.Helper()
	c := e.w.ca.Device(e.t, name, testpki.Serial(e.w.serial()),
		testpki.Subject(pkix.Name{CommonName: name, Organization: []string{"testenv"}}), testpki.UPN(upnSAN),
		testpki.CDP(e.PartitionURL(part)))
	return Device{Name: name, Cert: c.TLS(), Leaf: c.Cert}
}

// RevokeInPartition lists d's serial in partition part's CRL only; the crl
// role picks it up at its next fetch (every second here).
func (e *Env) RevokeInPartition(d Device, part string) {
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	if e.w.partRevoked == nil {
		e.w.partRevoked = map[string][]testpki.Revoked{}
	}
	e.w.partRevoked[part] = append(e.w.partRevoked[part], testpki.Revoked{Serial: d.Leaf.SerialNumber, At: time.Now().Add(-time.Second)})
}
