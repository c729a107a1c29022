package certmap

import (
	"crypto/sha256"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
)

// TestPanickingLookupClosesItsConnection: the connection a panicking lookup
// used is closed, not left open outside the pool (neither returned nor
// closed, it stayed open until the directory dropped it: one more open
// connection per panicking request). The next lookup dials anew.
func TestPanickingLookupClosesItsConnection(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	m := newMapper(t, l.config(nil))
	var used *ldap.Conn
	v := lookupRecovered(m, sha256.Sum256(l.mallory.Raw), func(c *ldap.Conn, _ string) (answer, error) {
		used = c
		panic("unexpected directory answer for mallory")
	})
	if v == nil || used == nil {
		t.Fatalf("the search did not run or did not panic (%v)", v)
	}
	if !used.IsClosing() {
		t.Fatal("the connection of the lookup that panicked is still open")
	}
	dials := l.srv.Dials()
	if mp, err := m.Map(t.Context(), l.alice.Raw); err != nil || mp.UPN != "alice@lab.test" {
		t.Fatalf("alice after the panic: %+v, %v", mp, err)
	}
	if l.srv.Dials() != dials+1 {
		t.Fatalf("%d dials for the next lookup, want 1 (the closed connection is not reused)", l.srv.Dials()-dials)
	}
}
