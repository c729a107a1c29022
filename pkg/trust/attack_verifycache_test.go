package trust

import (
	"crypto/x509"
	"errors"
	"path/filepath"
	"testing"
	"time"
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

	// Each variant is the device's chain with i+1 copies of extra after it.
	tests := []struct {
		name  string
		extra *x509.Certificate
	}{
		{"the intermediate repeated", inter.Cert},
		{"the leaf repeated", alice.Cert},
		{"unneeded certificates", other.Cert},
		{"nil entries", nil},
	}
	const variants = 50
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := mustLoad(t, dir, "root.pem")
			if _, err := VerifyClientChain(store, chainOf(alice, inter), testNow); err != nil {
				t.Fatalf("the device's own chain: %v", err)
			}
			for i := range variants {
				variant := chainOf(alice, inter)
				for range i + 1 {
					variant = append(variant, tc.extra)
				}
				if _, err := VerifyClientChain(store, variant, testNow); err != nil {
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

// TestAttackReloaderKeepsNoRememberedChain: a device verified (and
// remembered) against the Reloader's Store must be refused as soon as a
// reload removes its CA, whichever way the reload comes: a new
// configuration, the file rewritten and polled or SIGHUP, a two-phase
// apply. Each builds a new Store, whose cache is empty. Held on main.
func TestAttackReloaderKeepsNoRememberedChain(t *testing.T) {
	root := newCA(t, "Root CA")
	inter := root.Intermediate(t, "Issuing CA")
	other := newCA(t, "Other CA")
	alice := chainOf(inter.Device(t, "alice"), inter)

	tests := []struct {
		name   string
		remove func(t *testing.T, r *Reloader, dir string)
	}{
		{name: "new configuration", remove: func(t *testing.T, r *Reloader, dir string) {
			if err := r.Update(Spec{TrustStorePath: "other.pem", BaseDir: dir}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "file rewritten, polled", remove: func(t *testing.T, r *Reloader, dir string) {
			writeFile(t, filepath.Join(dir, "trust.pem"), pemOf(other))
			if tried, err := r.Poll(); !tried || err != nil {
				t.Fatalf("poll: tried %v, %v", tried, err)
			}
		}},
		{name: "file rewritten, SIGHUP", remove: func(t *testing.T, r *Reloader, dir string) {
			writeFile(t, filepath.Join(dir, "trust.pem"), pemOf(other))
			if err := r.Reload(); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "two-phase apply", remove: func(t *testing.T, r *Reloader, dir string) {
			commit, err := r.Prepare(Spec{TrustStorePath: "other.pem", BaseDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			commit()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "trust.pem"), pemOf(root, other))
			writeFile(t, filepath.Join(dir, "other.pem"), pemOf(other))
			r, err := NewReloader(ReloaderOptions{Spec: Spec{TrustStorePath: "trust.pem", BaseDir: dir}, PollInterval: -1, Now: func() time.Time { return testNow }})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second from the cache
				if _, err := VerifyClientChain(r.Store(), alice, testNow); err != nil {
					t.Fatalf("before the reload: %v", err)
				}
			}
			tc.remove(t, r, dir)
			_, err = VerifyClientChain(r.Store(), alice, testNow)
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Reason != ReasonUnknownAuthority {
				t.Fatalf("after the reload removed the CA: %v, want %v", err, ReasonUnknownAuthority)
			}
		})
	}
}
