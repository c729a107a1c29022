package testpki_test

import (
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
)

// BenchmarkDevice measures what a test pays per minted device certificate
// with a UPN: a P-256 key, a signature and a parse.
func BenchmarkDevice(b *testing.B) {
	ca := testpki.NewCA(b, "Bench CA").Intermediate(b, "Bench Issuing CA")
	for b.Loop() {
		if c := ca.Device(b, "alice", testpki.UPN("alice@lab.test")); c.Cert == nil {
			b.Fatal("no certificate")
		}
	}
}
