package pfx

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// encryptedElement returns the first ContentInfo of an openssl PFX's
// AuthenticatedSafe (the encrypted certificates), as DER.
func encryptedElement(tb testing.TB, data []byte) []byte {
	tb.Helper()
	in := cryptobyte.String(data)
	var pfx cryptobyte.String
	var version int
	if !in.ReadASN1(&pfx, cbasn1.SEQUENCE) || !pfx.ReadASN1Integer(&version) {
		tb.Fatal("not a PFX")
	}
	authSafe, err := readAuthSafe(&pfx)
	if err != nil {
		tb.Fatal(err)
	}
	as := cryptobyte.String(authSafe)
	var seq cryptobyte.String
	var ci cryptobyte.String
	if !as.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1Element(&ci, cbasn1.SEQUENCE) {
		tb.Fatal("no ContentInfo")
	}
	return ci
}

// pfxWithMAC builds a PFX around the AuthenticatedSafe made of elements,
// with an HMAC-SHA-256 MAC of one iteration keyed by password.
func pfxWithMAC(tb testing.TB, elements [][]byte, password string) []byte {
	tb.Helper()
	var as cryptobyte.Builder
	as.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, e := range elements {
			b.AddBytes(e)
		}
	})
	authSafe := as.BytesOrPanic()
	salt := []byte("saltsalt")
	key := pkcs12KDF(sha256.New, kdfMAC, passwords(password).bmp[0], salt, 1, sha256.Size)
	m := hmac.New(sha256.New, key)
	m.Write(authSafe)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(3)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidData)
			b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
				b.AddASN1OctetString(authSafe)
			})
		})
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidSHA256)
					b.AddASN1NULL()
				})
				b.AddASN1OctetString(m.Sum(nil))
			})
			b.AddASN1OctetString(salt)
			b.AddASN1Int64(1)
		})
	})
	return b.BytesOrPanic()
}

// TestFileIterationBudget: a file of encrypted elements, each at the
// per-element limit, is refused once they add up to more than
// maxFileIterations, before the key derivations beyond it run (a trust
// store of many such elements cost minutes to hours at every start).
func TestFileIterationBudget(t *testing.T) {
	cas := mintCAs(t, 1)
	el := encryptedElement(t, opensslPFX(t, cas, false, "pw", "-certpbe", "AES-256-CBC", "-iter", "1048576", "-nomaciter"))
	tests := []struct {
		n  int
		ok bool
	}{
		{1, true},
		{5, false}, // 5 × 2^20 > 2^22
	}
	for _, tt := range tests {
		els := make([][]byte, tt.n)
		for i := range els {
			els[i] = el
		}
		certs, err := Decode(pfxWithMAC(t, els, "pw"), "pw")
		if tt.ok && (err != nil || len(certs) != 1) {
			t.Fatalf("%d elements: %d certs, %v", tt.n, len(certs), err)
		}
		if !tt.ok && !errors.Is(err, ErrMalformed) {
			t.Fatalf("%d elements of 2^20 iterations: %d certs, err %v; want refused", tt.n, len(certs), err)
		}
	}
}
