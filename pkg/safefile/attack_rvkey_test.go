package safefile_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/safefile"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// rvkeyPair is a real certificate and its key: PEM of both, and the parsed
// pair for a PFX.
func rvkeyPair(t *testing.T) (certPEM, keyPEM []byte, cert *x509.Certificate, key *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gateway"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), cert, key
}

// TestAttackKeyInsidePublicFileSlips (rvkey, review of a61117f): a file
// read as public (a certificate, a CA bundle, the trust store) that holds
// a private key every local user may read, in a form the PEM parser does
// not take for a key block: a label in lower case, a block cut before its
// END line (a truncated paste), an END line naming another type, an
// indented block (copied out of YAML), a malformed header, and a PFX in
// the trust store exported with its key (Windows' export wizard offers
// PFX only with the key; an offline guess of its passcode gives the key).
// Each slipped through on a61117f: the key is there for whoever reads the
// file, whatever a parser makes of its armor. The rows a61117f accepts
// (a certificate, a comment naming the words, a trust-store PFX without
// keys) stay accepted.
func TestAttackKeyInsidePublicFileSlips(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes are not checked on Windows")
	}
	certPEM, keyPEM, cert, key := rvkeyPair(t)
	keyLines := strings.Split(strings.TrimSpace(string(keyPEM)), "\n") // BEGIN, base64..., END
	body := strings.Join(keyLines[1:len(keyLines)-1], "\n") + "\n"
	cat := func(parts ...string) []byte { return []byte(string(certPEM) + strings.Join(parts, "")) }
	indented := "key: |\n"
	for _, l := range keyLines {
		indented += "  " + l + "\n"
	}
	withKey, err := pkcs12.Modern.Encode(key, cert, nil, "passcode")
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := pkcs12.LegacyDES.Encode(key, cert, nil, "passcode")
	if err != nil {
		t.Fatal(err)
	}
	trustOnly, err := pkcs12.Modern.EncodeTrustStore([]*x509.Certificate{cert}, "passcode")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		content []byte
		refused bool
	}{
		{"label in lower case", cat("-----BEGIN private key-----\n", body, "-----END private key-----\n"), true},
		{"label in mixed case", cat("-----BEGIN Private Key-----\n", body, "-----END Private Key-----\n"), true},
		{"no END line (a truncated paste)", cat(keyLines[0]+"\n", body), true},
		{"END line of another type", cat(keyLines[0]+"\n", body, "-----END RSA PRIVATE KEY-----\n"), true},
		{"indented (copied out of YAML)", cat(indented), true},
		{"text before BEGIN on its line", cat("key: ", string(keyPEM)), true},
		{"a header the parser refuses", cat("-----BEGIN RSA PRIVATE KEY-----\nProc-Type 4,ENCRYPTED\n\n", body, "-----END RSA PRIVATE KEY-----\n"), true},
		{"CRLF line ends", bytes.ReplaceAll(cat(string(keyPEM)), []byte("\n"), []byte("\r\n")), true},
		{"a PFX with its key (AES-256)", withKey, true},
		{"a PFX with its key (TripleDES, Windows' legacy)", legacy, true},
		{"held: a certificate only", certPEM, false},
		{"held: the words in a comment", cat("# the key: -----BEGIN PRIVATE KEY----- goes elsewhere\n"), false},
		{"held: a trust-store PFX without keys", trustOnly, false},
	} {
		for name, rd := range map[string]func(string, int64) ([]byte, error){"Read": safefile.Read, "ReadTrusted": safefile.ReadTrusted} {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				p := safefiletest.Tree{File: 0o644, Dir: 0o755}.Make(t, "certs", "cert.pem", tt.content)
				got, err := rd(p, 1<<20)
				e, ok := errors.AsType[*safefile.ExposedError](err)
				switch {
				case !tt.refused && err != nil:
					t.Fatalf("%s: %v; want the content", name, err)
				case tt.refused && (!ok || !e.HoldsKey || got != nil):
					t.Fatalf("%s of a 0644 file holding a key = %d bytes, %v; want nothing and an *ExposedError that HoldsKey", name, len(got), err)
				case tt.refused && !strings.Contains(e.Explain(p, "replace"), "has mode 0644"):
					t.Errorf("Explain = %q; want the mode", e.Explain(p, "replace"))
				}
			})
		}
	}
}
