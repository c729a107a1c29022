package pfx

import (
	"os"
	"path/filepath"
	"testing"
)

func BenchmarkDecode(b *testing.B) {
	for _, c := range readCorpus(b) {
		data, err := os.ReadFile(c.path)
		if err != nil {
			b.Fatal(err)
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
