package pfx

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkDecode decodes every corpus file that Decode accepts; a file
// without a MAC is refused by design (ErrNoMAC) and is not timed.
func BenchmarkDecode(b *testing.B) {
	for _, c := range readCorpus(b) {
		data, err := os.ReadFile(c.path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(data, c.password); errors.Is(err, ErrNoMAC) {
			continue
		}
		b.Run(filepath.Base(c.path), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(data, c.password); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
