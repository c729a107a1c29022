package crl_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func mustParse(tb testing.TB, der []byte) *crl.CRL {
	tb.Helper()
	c, err := crl.Parse(der)
	if err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	return c
}

func kindOf(err error) crl.Kind {
	var e *crl.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// indexOf parses, verifies against ca and indexes der.
func indexOf(tb testing.TB, ca *crltest.CA, der []byte) *crl.Index {
	tb.Helper()
	c := mustParse(tb, der)
	signer, err := c.Verify([]*x509.Certificate{ca.Cert})
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	return c.Index(signer, "http://test/ca.crl", t0)
}

func TestParseAgreesWithStdlib(t *testing.T) {
	ca := crltest.NewCA(t, "Agree CA", t0)
	high := new(big.Int).SetBytes([]byte{0x80, 1, 2, 3, 4, 5, 6, 7, 8})
	huge := new(big.Int).Lsh(big.NewInt(1), 8*70) // longer than the 64-byte stack buffer
	tests := []struct {
		name    string
		revoked []crltest.Revoked
	}{
		{"empty", nil},
		{"one", []crltest.Revoked{{Serial: big.NewInt(42), At: t0.Add(-time.Hour)}}},
		{"reasons and odd serials", []crltest.Revoked{
			{Serial: big.NewInt(0), At: t0.Add(-2 * time.Hour), Reason: 1},
			{Serial: high, At: t0.Add(-3 * time.Hour), Reason: 4},
			{Serial: huge, At: time.Date(1999, 1, 2, 3, 4, 5, 0, time.UTC), Reason: 9},
			{Serial: big.NewInt(255), At: time.Date(2051, 1, 2, 3, 4, 5, 0, time.UTC)}, // GeneralizedTime
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			der := ca.CRL(t, crltest.CRLOptions{Number: 7, ThisUpdate: t0, Revoked: tc.revoked})
			for _, input := range [][]byte{der, crltest.PEM(der)} {
				c := mustParse(t, input)
				want, err := x509.ParseRevocationList(der)
				if err != nil {
					t.Fatal(err)
				}
				if c.Len() != len(want.RevokedCertificateEntries) {
					t.Fatalf("Len = %d, want %d", c.Len(), len(want.RevokedCertificateEntries))
				}
				if !bytes.Equal(c.DER, der) || c.Header.Number.Cmp(want.Number) != 0 ||
					!c.Header.ThisUpdate.Equal(want.ThisUpdate) || !c.Header.NextUpdate.Equal(want.NextUpdate) ||
					!bytes.Equal(c.Header.RawIssuer, want.RawIssuer) || !bytes.Equal(c.Header.AuthorityKeyId, want.AuthorityKeyId) {
					t.Fatalf("header differs from x509.ParseRevocationList")
				}
				ix := c.Index(ca.Cert, "src", t0)
				for _, e := range want.RevokedCertificateEntries {
					got, ok := ix.Lookup(e.SerialNumber)
					if !ok || !got.RevokedAt.Equal(e.RevocationTime) || got.Reason != e.ReasonCode {
						t.Errorf("serial %v: got %+v %v, want %v reason %d", e.SerialNumber, got, ok, e.RevocationTime, e.ReasonCode)
					}
				}
				if _, ok := ix.Lookup(big.NewInt(43)); ok {
					t.Errorf("serial 43 listed")
				}
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	ca := crltest.NewCA(t, "Reject CA", t0)
	good := ca.CRL(t, crltest.CRLOptions{ThisUpdate: t0, Revoked: []crltest.Revoked{{Serial: big.NewInt(5), At: t0}}})
	delta, err := x509.CreateRevocationList(nil, &x509.RevocationList{
		Number: big.NewInt(2), ThisUpdate: t0, NextUpdate: t0.Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 27}, Critical: true, Value: []byte{2, 1, 1}}},
	}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	indirect, err := x509.CreateRevocationList(nil, &x509.RevocationList{
		Number: big.NewInt(2), ThisUpdate: t0, NextUpdate: t0.Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{
			SerialNumber: big.NewInt(9), RevocationTime: t0,
			ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 29}, Critical: true, Value: []byte{0x30, 0}}},
		}},
	}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	truncated := good[:len(good)-10]
	tests := []struct {
		name  string
		input []byte
		want  crl.Kind
	}{
		{"empty", nil, crl.KindMalformed},
		{"html", []byte("<html>not found</html>"), crl.KindMalformed},
		{"pem of a certificate", []byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"), crl.KindMalformed},
		{"truncated", truncated, crl.KindMalformed},
		{"certificate DER", ca.Cert.Raw, crl.KindMalformed},
		{"delta CRL", delta, crl.KindUnsupported},
		{"indirect CRL", indirect, crl.KindUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := crl.Parse(tc.input)
			if got := kindOf(err); got != tc.want {
				t.Fatalf("Parse error %v (kind %v), want kind %v", err, got, tc.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	ca := crltest.NewCA(t, "Verify CA", t0)
	impostor := crltest.NewCA(t, "Verify CA", t0) // same name, other key
	other := crltest.NewCA(t, "Other CA", t0)
	der := ca.CRL(t, crltest.CRLOptions{ThisUpdate: t0})
	forged := impostor.CRL(t, crltest.CRLOptions{ThisUpdate: t0})
	// Same name and key id as ca, signed by the impostor's key.
	forgedSameKeyID := forgeWithKeyID(t, impostor, ca.Cert.SubjectKeyId)
	tests := []struct {
		name    string
		der     []byte
		trusted []*x509.Certificate
		want    crl.Kind // 0: verifies
	}{
		{"trusted", der, []*x509.Certificate{other.Cert, ca.Cert}, 0},
		{"two CAs of one name, right one found", der, []*x509.Certificate{impostor.Cert, ca.Cert}, 0},
		{"issuer not trusted", der, []*x509.Certificate{other.Cert}, crl.KindUntrusted},
		{"empty trust store", der, nil, crl.KindUntrusted},
		{"wrong signer", forged, []*x509.Certificate{ca.Cert}, crl.KindUntrusted},
		{"wrong signer claiming the key id", forgedSameKeyID, []*x509.Certificate{ca.Cert}, crl.KindSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			signer, err := mustParse(t, tc.der).Verify(tc.trusted)
			if got := kindOf(err); got != tc.want {
				t.Fatalf("Verify error %v (kind %v), want kind %v", err, got, tc.want)
			}
			if tc.want == 0 && signer != ca.Cert {
				t.Fatalf("signer = %v, want the CA", signer.Subject)
			}
		})
	}
}

// forgeWithKeyID returns a CRL signed by signer but claiming authority key id
// keyID.
func forgeWithKeyID(tb testing.TB, signer *crltest.CA, keyID []byte) []byte {
	tb.Helper()
	fake := *signer.Cert
	fake.SubjectKeyId = keyID
	der, err := x509.CreateRevocationList(nil, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: t0, NextUpdate: t0.Add(time.Hour),
	}, &fake, signer.Key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func TestSnapshotIsRevoked(t *testing.T) {
	ca := crltest.NewCA(t, "Snap CA", t0)
	unknownCA := crltest.NewCA(t, "Unknown CA", t0)
	revoked := ca.Leaf(t, big.NewInt(1001), t0)
	good := ca.Leaf(t, big.NewInt(1002), t0)
	stranger := unknownCA.Leaf(t, big.NewInt(1001), t0)
	ix := indexOf(t, ca, ca.CRL(t, crltest.CRLOptions{Number: 3, ThisUpdate: t0, Revoked: []crltest.Revoked{
		{Serial: big.NewInt(1001), At: t0.Add(-time.Minute), Reason: 1},
	}}))
	staleMeta := ix.Meta()
	staleMeta.Stale = true
	staleOpen := ix.WithMeta(staleMeta)
	staleMeta.FailClosed = true
	staleClosed := ix.WithMeta(staleMeta)

	tests := []struct {
		name                  string
		snap                  *crl.Snapshot
		cert                  *x509.Certificate
		revoked, known, stale bool
		failedClosed          bool
	}{
		{"listed", crl.NewSnapshot(1, ix), revoked, true, true, false, false},
		{"not listed", crl.NewSnapshot(1, ix), good, false, true, false, false},
		{"unknown issuer", crl.NewSnapshot(1, ix), stranger, false, false, false, false},
		{"nil snapshot", nil, good, false, false, false, false},
		{"stale, fail open, listed", crl.NewSnapshot(2, staleOpen), revoked, true, true, true, false},
		{"stale, fail open, not listed", crl.NewSnapshot(2, staleOpen), good, false, true, true, false},
		{"stale, fail closed", crl.NewSnapshot(2, staleClosed), good, true, true, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rev, info, known := tc.snap.IsRevoked(tc.cert)
			if rev != tc.revoked || known != tc.known || info.Stale != tc.stale || info.FailedClosed != tc.failedClosed {
				t.Fatalf("IsRevoked = %v, %+v, %v; want revoked %v known %v stale %v failedClosed %v",
					rev, info, known, tc.revoked, tc.known, tc.stale, tc.failedClosed)
			}
			if tc.revoked && !tc.failedClosed && (info.Reason != 1 || info.Issuer != ca.Cert.Subject.String() || info.Source != "http://test/ca.crl") {
				t.Fatalf("info = %+v", info)
			}
		})
	}
}

func TestSnapshotNewerWins(t *testing.T) {
	ca := crltest.NewCA(t, "Newer CA", t0)
	older := indexOf(t, ca, ca.CRL(t, crltest.CRLOptions{Number: 4, ThisUpdate: t0}))
	newer := indexOf(t, ca, ca.CRL(t, crltest.CRLOptions{Number: 5, ThisUpdate: t0.Add(-time.Hour),
		Revoked: []crltest.Revoked{{Serial: big.NewInt(77), At: t0}}}))
	for _, order := range [][]*crl.Index{{older, newer}, {newer, older}} {
		s := crl.NewSnapshot(1, order...)
		if got := s.Index(crl.KeyOf(ca.Cert.RawSubject, ca.Cert.SubjectKeyId)); got != newer {
			t.Fatalf("Index(key of the CA) = %v, want the newer index", got)
		}
		if len(s.Indexes()) != 1 || s.Indexes()[0] != newer {
			t.Fatalf("snapshot kept %d indexes, newest kept: %v", len(s.Indexes()), s.Indexes()[0] == newer)
		}
	}
}

func TestCompare(t *testing.T) {
	n := big.NewInt
	tests := []struct {
		name string
		a, b crl.Meta
		want int
	}{
		{"higher number", crl.Meta{Number: n(5), ThisUpdate: t0}, crl.Meta{Number: n(4), ThisUpdate: t0.Add(time.Hour)}, 1},
		{"lower number", crl.Meta{Number: n(3), ThisUpdate: t0}, crl.Meta{Number: n(4), ThisUpdate: t0}, -1},
		{"same number, later", crl.Meta{Number: n(4), ThisUpdate: t0.Add(time.Second)}, crl.Meta{Number: n(4), ThisUpdate: t0}, 1},
		{"no numbers, earlier", crl.Meta{ThisUpdate: t0}, crl.Meta{ThisUpdate: t0.Add(time.Second)}, -1},
		{"equal", crl.Meta{Number: n(4), ThisUpdate: t0}, crl.Meta{Number: n(4), ThisUpdate: t0}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := crl.Compare(tc.a, tc.b); got != tc.want {
				t.Fatalf("Compare = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestBuilderDuplicatesAndAll(t *testing.T) {
	b := crl.NewBuilder(0, 0)
	b.Add([]byte{1, 2}, t0, 1)
	b.Add([]byte{0, 1, 2}, t0.Add(time.Hour), 2) // same serial, leading zero
	b.Add(nil, t0, 300)                          // serial 0, reason out of range
	ix := b.Build(crl.Meta{Issuer: "x"})
	if ix.Len() != 2 {
		t.Fatalf("Len = %d, want 2", ix.Len())
	}
	e, ok := ix.LookupBytes([]byte{1, 2})
	if !ok || e.Reason != 1 || !e.RevokedAt.Equal(t0) {
		t.Fatalf("first entry = %+v %v, want the first added", e, ok)
	}
	if e, ok := ix.Lookup(big.NewInt(0)); !ok || e.Reason != 255 {
		t.Fatalf("serial 0 = %+v %v", e, ok)
	}
	if _, ok := ix.Lookup(big.NewInt(-258)); ok {
		t.Fatalf("negative serial listed")
	}
	var seen [][]byte
	for s := range ix.All() {
		seen = append(seen, bytes.Clone(s))
	}
	if len(seen) != 2 || !bytes.Equal(seen[0], []byte{1, 2}) || len(seen[1]) != 0 {
		t.Fatalf("All = %x", seen)
	}
}

func TestSetConcurrentSwap(t *testing.T) {
	ca := crltest.NewCA(t, "Swap CA", t0)
	leaf := ca.Leaf(t, big.NewInt(9), t0)
	listed := indexOf(t, ca, ca.CRL(t, crltest.CRLOptions{Number: 2, ThisUpdate: t0, Revoked: []crltest.Revoked{{Serial: big.NewInt(9), At: t0}}}))
	var set crl.Set
	if rev, _, known := set.IsRevoked(leaf); rev || known {
		t.Fatalf("empty set: revoked %v known %v", rev, known)
	}
	set.Store(crl.NewSnapshot(1, listed))
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				if rev, _, known := set.IsRevoked(leaf); !rev || !known {
					errs <- "a swap made a listed certificate pass"
					return
				}
			}
		}()
	}
	for v := uint64(2); v < 200; v++ {
		set.Store(crl.NewSnapshot(v, listed))
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if set.Load().Version() != 199 {
		t.Fatalf("version = %d", set.Load().Version())
	}
}

func TestLargeCRL(t *testing.T) {
	ca := crltest.NewCA(t, "Large CA", t0)
	const n = 5000
	der := ca.LargeCRL(t, n, 9, t0, t0.Add(time.Hour))
	want, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := want.CheckSignatureFrom(ca.Cert); err != nil {
		t.Fatalf("generated CRL does not verify with the stdlib: %v", err)
	}
	ix := indexOf(t, ca, der)
	if ix.Len() != n || ix.Meta().Number.Int64() != 9 {
		t.Fatalf("Len %d number %v", ix.Len(), ix.Meta().Number)
	}
	for _, e := range want.RevokedCertificateEntries {
		got, ok := ix.Lookup(e.SerialNumber)
		if !ok || got.Reason != e.ReasonCode || !got.RevokedAt.Equal(e.RevocationTime) {
			t.Fatalf("serial %x: %+v %v", e.SerialNumber, got, ok)
		}
	}
}

func TestWithURL(t *testing.T) {
	direct := &crl.Error{Kind: crl.KindMalformed, Err: errors.New("x")}
	named := &crl.Error{URL: "http://a/b.crl", Kind: crl.KindMalformed}
	wrapped := fmt.Errorf("ctx: %w", direct)
	plain := errors.New("plain")
	tests := []struct {
		name    string
		err     error
		wantURL string
		same    bool
	}{
		{"direct", direct, "http://x/y.crl", false},
		{"already named", named, "http://a/b.crl", true},
		{"wrapped", wrapped, "", true},
		{"plain", plain, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := crl.WithURL(tc.err, "http://x/y.crl")
			if (got == tc.err) != tc.same {
				t.Fatalf("same = %v, want %v", got == tc.err, tc.same)
			}
			var e *crl.Error
			if errors.As(got, &e) && e.URL != tc.wantURL {
				t.Fatalf("URL = %q, want %q", e.URL, tc.wantURL)
			}
			if tc.name == "direct" && (direct.URL != "" || !strings.Contains(got.Error(), "http://x/y.crl: not a valid CRL: x")) {
				t.Fatalf("the original was modified or the message is %q", got)
			}
		})
	}
}

func TestIndexTwice(t *testing.T) {
	ca := crltest.NewCA(t, "Twice CA", t0)
	c := mustParse(t, ca.CRL(t, crltest.CRLOptions{ThisUpdate: t0, Revoked: []crltest.Revoked{{Serial: big.NewInt(3), At: t0}}}))
	a := c.Index(ca.Cert, "first", t0)
	b := c.Index(ca.Cert, "second", t0)
	if a.Len() != 1 || b.Len() != 1 || b.Meta().Source != "second" || c.Len() != 1 {
		t.Fatalf("second Index: %d entries from %q (first %d)", b.Len(), b.Meta().Source, a.Len())
	}
}

func TestKeyOf(t *testing.T) {
	long := bytes.Repeat([]byte{7}, 300) // over the stack buffer: the streaming path
	for _, tc := range []struct {
		name         string
		subject, kid []byte
	}{
		{"short", []byte("subject"), []byte{1, 2, 3}},
		{"no key id", []byte("subject"), nil},
		{"long subject", long, []byte{9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := sha256.Sum256(append(bytes.Clone(tc.subject), tc.kid...))
			if got := crl.KeyOf(tc.subject, tc.kid); got != crl.IssuerKey(want) {
				t.Fatalf("KeyOf = %s, want %x", got, want)
			}
		})
	}
}
