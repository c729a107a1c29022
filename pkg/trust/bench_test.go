package trust

import (
	"path/filepath"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
)

func BenchmarkLoad(b *testing.B) {
	cas := []*testpki.Cert{newCA(b, "CA01"), newCA(b, "CA02"), newCA(b, "CA03")}
	dir := b.TempDir()
	for i, ca := range cas {
		writeFile(b, filepath.Join(dir, "ca"+string(rune('1'+i))+".pem"), pemOf(ca))
	}
	b.Run("PEM list of 3", func(b *testing.B) {
		spec := Spec{TrustStorePath: "ca1.pem, ca2.pem, ca3.pem", BaseDir: dir}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := load(spec, testNow); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PFX of 3 (openssl3 AES-256)", func(b *testing.B) {
		writeFile(b, filepath.Join(dir, "cas.pfx"), opensslPFX(b, "pw", cas))
		spec := Spec{TrustStorePath: "cas.pfx", Passcode: "pw", BaseDir: dir}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := load(spec, testNow); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerifyClientChain(b *testing.B) {
	root := newCA(b, "Root")
	inter := root.Intermediate(b, "Issuing")
	dir := b.TempDir()
	writeFile(b, filepath.Join(dir, "root.pem"), pemOf(root, newCA(b, "Other")))
	s, err := load(Spec{TrustStorePath: "root.pem", BaseDir: dir}, testNow)
	if err != nil {
		b.Fatal(err)
	}
	chain := chainOf(inter.Device(b, "user"), inter)
	// first: crypto/x509's verification, what a device's first handshake costs;
	// again: the same chain once more (a reconnect or a resumed session), from the cache.
	for _, again := range []bool{false, true} {
		name := map[bool]string{false: "first", true: "again"}[again]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !again {
					s.verified.mu.Lock()
					s.verified.m = nil
					s.verified.mu.Unlock()
				}
				if _, err := VerifyClientChain(s, chain, testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPoll is the cost of one poll that finds nothing changed.
func BenchmarkPoll(b *testing.B) {
	dir := b.TempDir()
	writeFile(b, filepath.Join(dir, "ca.pem"), pemOf(newCA(b, "CA")))
	r, err := NewReloader(ReloaderOptions{Spec: Spec{TrustStorePath: "ca.pem", BaseDir: dir}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if tried, _ := r.Poll(); tried {
			b.Fatal("reload without a change")
		}
	}
}
