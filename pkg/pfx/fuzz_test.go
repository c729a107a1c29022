package pfx

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// FuzzDecode feeds Decode arbitrary files and passwords, seeded with the committed corpus.
// Decode must never panic, must either fail or return only parsed certificates, and every
// error must carry the pfx: prefix.
func FuzzDecode(f *testing.F) {
	for _, c := range readCorpus(f) {
		if isSlow(c.path) {
			continue
		}
		data, err := os.ReadFile(c.path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, c.password)
	}
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x03}, "")
	f.Fuzz(func(t *testing.T, data []byte, password string) {
		certs, err := Decode(data, password)
		if err != nil {
			if certs != nil {
				t.Fatalf("Decode returned %d certificates with error %v", len(certs), err)
			}
			if !strings.HasPrefix(err.Error(), "pfx: ") {
				t.Fatalf("error %q lacks the pfx: prefix", err)
			}
			return
		}
		for i, c := range certs {
			if c == nil || len(c.Raw) == 0 {
				t.Fatalf("certificate %d is empty", i)
			}
		}
	})
}

// FuzzAuthenticatedSafe fuzzes what lies behind the MAC (content infos, encryption
// parameters, bags), which FuzzDecode rarely reaches because a mutated file fails its MAC.
func FuzzAuthenticatedSafe(f *testing.F) {
	for _, c := range readCorpus(f) {
		if isSlow(c.path) {
			continue
		}
		data, err := os.ReadFile(c.path)
		if err != nil {
			f.Fatal(err)
		}
		pfx := cryptobyte.String(data)
		var seq cryptobyte.String
		var version int
		if !pfx.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1Integer(&version) {
			f.Fatalf("%s: not a PFX", c.path)
		}
		authSafe, err := readAuthSafe(&seq)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(authSafe, c.password, true)
	}
	// The third argument (whether the MAC was checked) is kept for the stored corpus;
	// a file without a MAC is now refused before this point (ErrNoMAC).
	f.Fuzz(func(t *testing.T, data []byte, password string, _ bool) {
		d := decoder{pw: passwords(password), budget: &budget{left: maxFileIterations}}
		err := d.authenticatedSafe(data)
		if err != nil && !strings.HasPrefix(err.Error(), "pfx: ") {
			t.Fatalf("error %q lacks the pfx: prefix", err)
		}
	})
}

// isSlow reports whether a corpus file is too slow to open for a fuzz seed: NSS uses
// 600000 PBKDF2 iterations.
func isSlow(path string) bool { return strings.HasPrefix(filepath.Base(path), "nss-") }

// FuzzBERToDER checks the BER normaliser: no panic, and its output is a fixed point (DER
// comes back unchanged).
func FuzzBERToDER(f *testing.F) {
	for _, c := range readCorpus(f) {
		data, err := os.ReadFile(c.path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{0x30, 0x80, 0x24, 0x80, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		der, err := berToDER(data)
		if err != nil {
			return
		}
		again, err := berToDER(der)
		if err != nil || !bytes.Equal(again, der) {
			t.Fatalf("berToDER is not idempotent: %x -> %x -> %x, %v", data, der, again, err)
		}
	})
}
