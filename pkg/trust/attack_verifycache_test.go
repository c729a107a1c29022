package trust

import (
	"crypto/x509"
	"path/filepath"
	"testing"
)

// TestAttackOneDeviceFillsTheVerifyCache: an attacker who holds one valid
// certificate presents it again and again with its intermediate followed by
// certificates the chain does not need (the intermediate once more, k
// times; an unrelated CA's certificate). crypto/x509 ignores what it does
// not use, so every variant is accepted, and each has its own cache key.
// Remembering them let one device fill the Store's cache (65,536 entries,
// each holding that handshake's parsed certificates) and push every other
// device's verification out. Only a chain made of the verified chains'
// certificates, each once, may be remembered: every variant is still
// accepted, verified afresh. Failed on main (51 entries after 50 variants).
func TestAttackOneDeviceFillsTheVerifyCache(t *testing.T) {
	root := newCA(t, "Root CA")
	inter := root.Intermediate(t, "Issuing CA")
	other := newCA(t, "Other CA")
	alice := inter.Device(t, "alice")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "root.pem"), pemOf(root))

	tests := []struct {
		name    string
		variant func(i int) []*x509.Certificate
	}{
		{name: "the intermediate repeated", variant: func(i int) []*x509.Certificate {
			c := chainOf(alice, inter)
			for range i + 1 {
				c = append(c, inter.Cert)
			}
			return c
		}},
		{name: "the leaf repeated", variant: func(i int) []*x509.Certificate {
			c := chainOf(alice, inter)
			for range i + 1 {
				c = append(c, alice.Cert)
			}
			return c
		}},
		{name: "unneeded certificates", variant: func(i int) []*x509.Certificate {
			c := chainOf(alice, inter)
			for range i + 1 {
				c = append(c, other.Cert)
			}
			return c
		}},
		{name: "nil entries", variant: func(i int) []*x509.Certificate {
			c := chainOf(alice, inter)
			for range i + 1 {
				c = append(c, nil)
			}
			return c
		}},
	}
	const variants = 50
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := mustLoad(t, dir, "root.pem")
			if _, err := VerifyClientChain(store, chainOf(alice, inter), testNow); err != nil {
				t.Fatalf("the device's own chain: %v", err)
			}
			for i := range variants {
				if _, err := VerifyClientChain(store, tc.variant(i), testNow); err != nil {
					t.Fatalf("variant %d refused: %v (a fresh verification accepts it)", i, err)
				}
			}
			if n := store.verified.len(); n != 1 {
				t.Fatalf("one device left %d remembered verifications after %d variants of its chain, want 1 (its own chain)", n, variants)
			}
			// A device that sends its root too is still remembered.
			if _, err := VerifyClientChain(store, chainOf(alice, inter, root), testNow); err != nil {
				t.Fatalf("the chain with its root: %v", err)
			}
			if n := store.verified.len(); n != 2 {
				t.Fatalf("%d remembered verifications, want 2 (the chain with its root remembered too)", n)
			}
		})
	}
}
