package trust

import (
	"crypto/x509"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpki"
)

// TestVerifyCacheServesOnlyWhatAFullVerificationWould runs each case twice
// against one Store, the second time at its own moment, and wants the
// verdict a Store that never saw the chain gives at that moment: the
// remembered verification of the first may be reused only where it cannot
// change the answer.
func TestVerifyCacheServesOnlyWhatAFullVerificationWould(t *testing.T) {
	root := newCA(t, "Root CA")
	inter := root.Intermediate(t, "Issuing CA")
	shortInter := root.Intermediate(t, "Short Issuing CA", testpki.NotAfter(testNow.Add(time.Hour)))
	other := newCA(t, "Other CA")
	otherInter := other.Intermediate(t, "Other Issuing CA")
	alice := inter.Device(t, "alice")
	bob := shortInter.Device(t, "bob")
	soon := inter.Device(t, "carol", testpki.NotAfter(testNow.Add(time.Minute)))
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "root.pem"), pemOf(root))
	writeFile(t, filepath.Join(dir, "other.pem"), pemOf(other))

	tests := []struct {
		name        string
		first       []*x509.Certificate
		firstAt     time.Time
		second      []*x509.Certificate
		secondAt    time.Time
		wantReason  Reason // -1: accepted
		wantCached  bool   // the second verification is served from the cache
		storeAgain  bool   // the second verification is against a reloaded Store
		secondStore string // the trust file of the second Store when storeAgain
	}{
		{name: "same chain, same moment", first: chainOf(alice, inter), firstAt: testNow, second: chainOf(alice, inter), secondAt: testNow, wantReason: -1, wantCached: true},
		{name: "same chain, later, still valid", first: chainOf(alice, inter), firstAt: testNow, second: chainOf(alice, inter), secondAt: testNow.Add(24 * time.Hour), wantReason: -1, wantCached: true},
		{name: "leaf expired since", first: chainOf(soon, inter), firstAt: testNow, second: chainOf(soon, inter), secondAt: testNow.Add(2 * time.Minute), wantReason: ReasonExpired},
		{name: "intermediate expired since, leaf still valid", first: chainOf(bob, shortInter), firstAt: testNow, second: chainOf(bob, shortInter), secondAt: testNow.Add(2 * time.Hour), wantReason: ReasonExpired},
		{name: "clock set back before the leaf was valid", first: chainOf(alice, inter), firstAt: testNow, second: chainOf(alice, inter), secondAt: testNow.AddDate(-2, 0, 0), wantReason: ReasonNotYetValid},
		{name: "same leaf without its intermediate", first: chainOf(alice, inter), firstAt: testNow, second: chainOf(alice), secondAt: testNow, wantReason: ReasonUnknownAuthority},
		{name: "same leaf, intermediate of another CA", first: chainOf(alice, inter), firstAt: testNow, second: chainOf(alice, otherInter), secondAt: testNow, wantReason: ReasonUnknownAuthority},
		{name: "CA removed by a reload", first: chainOf(alice, inter), firstAt: testNow, second: chainOf(alice, inter), secondAt: testNow, wantReason: ReasonUnknownAuthority, storeAgain: true, secondStore: "other.pem"},
		{name: "same CA reloaded: verified again, then remembered", first: chainOf(alice, inter), firstAt: testNow, second: chainOf(alice, inter), secondAt: testNow, wantReason: -1, storeAgain: true, secondStore: "root.pem"},
		{name: "a refusal is not remembered", first: chainOf(alice), firstAt: testNow, second: chainOf(alice, inter), secondAt: testNow, wantReason: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := mustLoad(t, dir, "root.pem")
			VerifyClientChain(store, tc.first, tc.firstAt) //nolint:errcheck // fills the cache or not; the second call is judged
			second := store
			if tc.storeAgain {
				second = mustLoad(t, dir, tc.secondStore)
			}
			before := second.verified.len()
			hits := second.verified.served()
			_, err := VerifyClientChain(second, tc.second, tc.secondAt)
			_, fresh := VerifyClientChain(mustLoad(t, dir, storeFile(tc.storeAgain, tc.secondStore)), tc.second, tc.secondAt)
			if (err == nil) != (fresh == nil) {
				t.Fatalf("cached verdict %v, a fresh Store's %v", err, fresh)
			}
			if tc.wantReason < 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
			} else {
				var ve *VerifyError
				if !errors.As(err, &ve) || ve.Reason != tc.wantReason {
					t.Fatalf("error %v, want reason %v", err, tc.wantReason)
				}
			}
			after := second.verified.len()
			cached := second.verified.served() > hits
			if cached != tc.wantCached {
				t.Fatalf("served from the cache: %v, want %v", cached, tc.wantCached)
			}
			if err != nil && after != before {
				t.Fatalf("a refusal was remembered (entries %d -> %d)", before, after)
			}
		})
	}
}

// TestVerifyCacheHoldsNoCertificate shows a hit is a hit and keeps nothing
// of the first handshake: the second verification, of the same bytes parsed
// anew (as each TLS handshake does), is served from the cache and returns
// the certificates the second caller presented and the Store's root, never
// the first caller's (an entry pinning each handshake's parsed certificates
// cost 5.5 KB, review rvfinal).
func TestVerifyCacheHoldsNoCertificate(t *testing.T) {
	root := newCA(t, "Root CA")
	inter := root.Intermediate(t, "Issuing CA")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "root.pem"), pemOf(root))
	store := mustLoad(t, dir, "root.pem")
	leaf := inter.Device(t, "alice")
	first, err := VerifyClientChain(store, reparsed(t, leaf, inter), testNow)
	if err != nil {
		t.Fatal(err)
	}
	again := reparsed(t, leaf, inter)
	second, err := VerifyClientChain(store, again, testNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n := store.verified.served(); n != 1 {
		t.Fatalf("%d verifications served from the cache, want 1", n)
	}
	if len(second) != len(first) || len(second[0]) != 3 {
		t.Fatalf("chains %v, want the first's shape %v", second, first)
	}
	if second[0][0] != again[0] || second[0][1] != again[1] {
		t.Fatal("the chain served is not made of the certificates presented this time")
	}
	if second[0][2] != store.certs[0] {
		t.Fatal("the chain served does not end in the Store's root")
	}
	if n := store.verified.len(); n != 1 {
		t.Fatalf("%d remembered verifications, want 1", n)
	}
}

// reparsed parses the certificates' bytes anew, as a TLS handshake does.
func reparsed(tb testing.TB, certs ...*testpki.Cert) []*x509.Certificate {
	tb.Helper()
	out := make([]*x509.Certificate, len(certs))
	for i, c := range certs {
		p, err := x509.ParseCertificate(c.Cert.Raw)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = p
	}
	return out
}

// TestVerifyCacheIsBounded fills the cache past its size: it keeps at most
// verifyCacheSize entries, and a chain forgotten is verified again.
func TestVerifyCacheIsBounded(t *testing.T) {
	var vc verifyCache
	cert := &x509.Certificate{Raw: []byte{1}, NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour)}
	presented := []*x509.Certificate{cert}
	chains := [][]*x509.Certificate{{cert}}
	for i := range verifyCacheSize + 10 {
		var k [32]byte
		k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
		vc.put(k, presented, &Store{}, chains)
	}
	if n := vc.len(); n != verifyCacheSize {
		t.Fatalf("%d entries, want the bound %d", n, verifyCacheSize)
	}
}

// TestChainKeyTellsChainsApart: the key covers every certificate, its order
// and a nil entry.
func TestChainKeyTellsChainsApart(t *testing.T) {
	root := newCA(t, "Root CA")
	inter := root.Intermediate(t, "Issuing CA")
	leaf := inter.Device(t, "alice")
	chains := map[string][]*x509.Certificate{
		"leaf":                     chainOf(leaf),
		"leaf, intermediate":       chainOf(leaf, inter),
		"intermediate, leaf":       chainOf(inter, leaf),
		"leaf, intermediate, root": chainOf(leaf, inter, root),
		"leaf, nil":                {leaf.Cert, nil},
		"leaf, nil, intermediate":  {leaf.Cert, nil, inter.Cert},
	}
	seen := map[[32]byte]string{}
	for name, c := range chains {
		k := chainKey(c)
		if prev, ok := seen[k]; ok {
			t.Fatalf("%q and %q share a key", prev, name)
		}
		seen[k] = name
	}
}

func mustLoad(tb testing.TB, dir, file string) *Store {
	tb.Helper()
	s, err := load(Spec{TrustStorePath: file, BaseDir: dir}, testNow)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func storeFile(again bool, file string) string {
	if again {
		return file
	}
	return "root.pem"
}
