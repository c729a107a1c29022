package pfx

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "regenerate testdata/*.pfx with openssl")

// corpusSpecs describe the committed testdata files: seeds for FuzzDecode and benchmarks
// that need no openssl.
var corpusSpecs = []struct {
	file     string
	password string
	withKey  bool
	args     []string
	nss      bool // made by NSS's pk12util (BER, 600000 iterations) instead of openssl
}{
	{"openssl3-aes256.pfx", "seg-passcode", false, nil, false},
	{"openssl3-legacy-rc2.pfx", "seg-passcode", false, []string{"-legacy"}, false},
	{"windows-3des-sha1.pfx", "seg-passcode", true, []string{"-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1", "-iter", "2000"}, false},
	{"windows-aes256-sha256.pfx", "seg-passcode", true, []string{"-certpbe", "AES-256-CBC", "-keypbe", "AES-256-CBC", "-macalg", "sha256", "-iter", "2000"}, false},
	{"aes128-sha512.pfx", "pässwörd", false, []string{"-certpbe", "AES-128-CBC", "-macalg", "sha512"}, false},
	{"unencrypted.pfx", "seg-passcode", false, []string{"-certpbe", "NONE"}, false},
	{"nomac-unencrypted.pfx", "", false, []string{"-certpbe", "NONE", "-nomac"}, false},
	{"empty-password.pfx", "", false, nil, false},
	{"nss-pk12util-ber.p12", "seg-passcode", true, nil, true},
}

const corpusManifest = "testdata/corpus.txt"

type corpusFile struct {
	path     string
	password string
	certs    int
}

// readCorpus reads testdata/corpus.txt: one "file<TAB>password<TAB>certificates" a line.
func readCorpus(tb testing.TB) []corpusFile {
	tb.Helper()
	f, err := os.Open(corpusManifest)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []corpusFile
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), "\t")
		if len(parts) != 3 {
			tb.Fatalf("bad manifest line %q", sc.Text())
		}
		n, err := strconv.Atoi(parts[2])
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, corpusFile{filepath.Join("testdata", parts[0]), parts[1], n})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestCorpus(t *testing.T) {
	if *update {
		cas := mintCAs(t, 2)
		var manifest strings.Builder
		for _, s := range corpusSpecs {
			data, count := []byte(nil), len(cas)
			if s.nss {
				// pk12util exports the certificate with the key and its issuers only.
				data, count = nssPFX(t, cas, s.password), 1
			} else {
				data = opensslPFX(t, cas, s.withKey, s.password, s.args...)
			}
			writeFile(t, filepath.Join("testdata", s.file), data)
			fmt.Fprintf(&manifest, "%s\t%s\t%d\n", s.file, s.password, count)
		}
		writeFile(t, corpusManifest, []byte(manifest.String()))
	}
	files := readCorpus(t)
	if len(files) < len(corpusSpecs) {
		t.Fatalf("corpus has %d files, want %d: run go test -run TestCorpus -update", len(files), len(corpusSpecs))
	}
	for _, c := range files {
		t.Run(c.path, func(t *testing.T) {
			data, err := os.ReadFile(c.path)
			if err != nil {
				t.Fatal(err)
			}
			certs, err := Decode(data, c.password)
			if strings.Contains(c.path, "nomac") {
				if !errors.Is(err, ErrNoMAC) {
					t.Fatalf("Decode = %d certificates, %v; want ErrNoMAC", len(certs), err)
				}
				return
			}
			if err != nil || len(certs) != c.certs {
				t.Fatalf("Decode = %d certificates, %v; want %d", len(certs), err, c.certs)
			}
			if isSlow(c.path) {
				return // TestDecodeNSS covers the wrong password
			}
			if _, err := Decode(data, c.password+"!"); !errors.Is(err, ErrIncorrectPassword) {
				t.Fatalf("Decode with a wrong password: %v, want ErrIncorrectPassword", err)
			}
		})
	}
}
