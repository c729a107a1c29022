package pfx

import (
	"bytes"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// formats are the PFX flavours the trust store must read, made by openssl with these
// arguments.
var formats = []struct {
	name    string
	withKey bool
	args    []string
}{
	{"openssl3 default (PBES2 AES-256-CBC, PBKDF2 HMAC-SHA-256, MAC SHA-256)", false, nil},
	{"openssl3 -legacy (RC2-40, MAC SHA-1)", false, []string{"-legacy"}},
	{"3DES with MAC SHA-1 (Windows TripleDES-SHA1)", false, []string{"-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1"}},
	{"3DES with a 3DES-shrouded key (Windows TripleDES-SHA1 with key)", true, []string{"-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1", "-iter", "2000"}},
	{"Windows AES256-SHA256 with key", true, []string{"-certpbe", "AES-256-CBC", "-keypbe", "AES-256-CBC", "-macalg", "sha256", "-iter", "2000"}},
	{"PBES2 AES-128-CBC", false, []string{"-certpbe", "AES-128-CBC"}},
	{"PBES2 AES-192-CBC", false, []string{"-certpbe", "AES-192-CBC"}},
	{"PBES2 DES-EDE3-CBC", false, []string{"-certpbe", "DES-EDE3-CBC"}},
	{"2-key 3DES", false, []string{"-legacy", "-certpbe", "PBE-SHA1-2DES"}},
	{"RC2-128", false, []string{"-legacy", "-certpbe", "PBE-SHA1-RC2-128"}},
	{"unencrypted certificate bags", false, []string{"-certpbe", "NONE"}},
	{"unencrypted certificate bags with key", true, []string{"-certpbe", "NONE", "-keypbe", "AES-256-CBC"}},
	{"MAC SHA-512", false, []string{"-macalg", "sha512"}},
	{"MAC SHA-384", false, []string{"-macalg", "sha384"}},
	{"MAC SHA-224", false, []string{"-macalg", "sha224"}},
	{"MAC with one iteration", false, []string{"-nomaciter"}},
}

func TestDecodeOpenSSLFormats(t *testing.T) {
	cas := mintCAs(t, 3)
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			const password = "Tr0ub4dor&3"
			data := opensslPFX(t, cas, f.withKey, password, f.args...)
			got, err := Decode(data, password)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !sameCerts(got, cas) {
				t.Fatalf("Decode returned %d certificates, want the %d CAs given to openssl", len(got), len(cas))
			}
			_, err = Decode(data, "wrong")
			if !errors.Is(err, ErrIncorrectPassword) {
				t.Fatalf("Decode with a wrong password: %v, want ErrIncorrectPassword", err)
			}
		})
	}
}

func TestDecodePasswords(t *testing.T) {
	cas := mintCAs(t, 1)
	tests := []struct {
		name     string
		password string
		args     []string
	}{
		{"empty", "", nil},
		{"empty legacy", "", []string{"-legacy"}},
		{"non-ASCII", "pässwörd-€", nil},
		{"non-ASCII 3DES", "pässwörd-€", []string{"-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1"}},
		{"beyond the BMP", "key-😀", []string{"-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1"}},
		{"long", strings.Repeat("0123456789", 20), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := opensslPFX(t, cas, false, tt.password, tt.args...)
			got, err := Decode(data, tt.password)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !sameCerts(got, cas) {
				t.Fatalf("got %d certificates, want 1", len(got))
			}
			if _, err := Decode(data, tt.password+"x"); !errors.Is(err, ErrIncorrectPassword) {
				t.Fatalf("Decode with a wrong password: %v, want ErrIncorrectPassword", err)
			}
		})
	}
}

// TestDecodeWithoutMAC: a file without a MAC is refused (ErrNoMAC): nothing
// ties its certificates to the password.
func TestDecodeWithoutMAC(t *testing.T) {
	cas := mintCAs(t, 2)
	for name, data := range map[string][]byte{
		"unencrypted": opensslPFX(t, cas, false, "", "-certpbe", "NONE", "-nomac"),
		"encrypted":   opensslPFX(t, cas, false, "secret", "-nomac", "-certpbe", "AES-256-CBC"),
	} {
		t.Run(name, func(t *testing.T) {
			for _, pw := range []string{"", "secret", "wrong"} {
				if got, err := Decode(data, pw); !errors.Is(err, ErrNoMAC) || got != nil {
					t.Fatalf("Decode(%q) = %d certs, %v; want ErrNoMAC", pw, len(got), err)
				}
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	cas := mintCAs(t, 2)
	good := opensslPFX(t, cas, false, "pw")
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 512)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated ASN.1 element"},
		{"garbage", garbage, "pfx: malformed"},
		{"base64 text", []byte(base64.StdEncoding.EncodeToString(good) + "\n"), "base64 text"},
		{"PEM text", []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), "PEM text"},
		{"truncated", good[:len(good)/2], "truncated ASN.1 element"},
		{"trailing data", append(bytes.Clone(good), 0, 0), "trailing data"},
		{"wrong version", bytes.Replace(bytes.Clone(good), []byte{0x02, 0x01, 0x03}, []byte{0x02, 0x01, 0x04}, 1), "version 4"},
		{"not a PKCS#12 SEQUENCE", []byte{0x30, 0x03, 0x02, 0x01, 0x03}, "authSafe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certs, err := Decode(tt.data, "pw")
			if err == nil {
				t.Fatalf("Decode succeeded with %d certificates", len(certs))
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %q does not wrap ErrMalformed", err)
			}
			if !strings.HasPrefix(err.Error(), "pfx: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want the pfx: prefix and %q", err, tt.want)
			}
		})
	}
}

// TestDecodeEveryTruncation cuts a good file at every length and flips every byte; none may
// panic, and no truncation may succeed.
func TestDecodeEveryTruncation(t *testing.T) {
	good := opensslPFX(t, mintCAs(t, 1), false, "pw", "-iter", "1", "-nomaciter") // cheap KDFs: ~1000 decodes
	for n := range len(good) {
		if _, err := Decode(good[:n], "pw"); err == nil {
			t.Fatalf("Decode of the first %d of %d bytes succeeded", n, len(good))
		}
	}
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x55
		certs, err := Decode(bad, "pw")
		if err == nil && len(certs) != 1 {
			t.Fatalf("flipping byte %d: Decode returned %d certificates and no error", i, len(certs))
		}
		if err != nil && !strings.HasPrefix(err.Error(), "pfx: ") {
			t.Fatalf("flipping byte %d: error %q lacks the pfx: prefix", i, err)
		}
	}
}

func TestUnsupportedError(t *testing.T) {
	err := error(&UnsupportedError{Feature: "MAC algorithm", OID: oidPBMAC1})
	var ue *UnsupportedError
	if !errors.As(err, &ue) || err.Error() != "pfx: unsupported MAC algorithm PBMAC1 (RFC 9579)" {
		t.Fatalf("got %q", err)
	}
}
