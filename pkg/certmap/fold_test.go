package certmap

import (
	"errors"
	"testing"

	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
)

// TestMapUPNCacheFoldsASCIIOnly: the UPN cache keyed on strings.ToLower, so
// "bob.sm\u0130th@lab.test" (U+0130 lower-cases to "i" under Unicode
// mapping) was answered from bob.smith@lab.test's cached mapping without
// asking the directory.
func TestMapUPNCacheFoldsASCIIOnly(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	m := newMapper(t, l.config(nil))
	if _, err := m.MapUPN(t.Context(), "bob.smith@lab.test"); err != nil {
		t.Fatal(err)
	}
	got, err := m.MapUPN(t.Context(), "BOB.SMITH@lab.test")
	if err != nil || !got.Cached {
		t.Fatalf("ASCII case variant: %+v, %v; want bob's cached mapping", got, err)
	}
	for _, upn := range []string{"bob.sm\u0130th@lab.test", "BOB.SM\u0130TH@LAB.TEST"} {
		got, err := m.MapUPN(t.Context(), upn)
		var nf *NotFoundError
		if !errors.As(err, &nf) || got.UPN != "" {
			t.Fatalf("MapUPN(%q) = %+v, %v; want NotFoundError (from the directory, or its cached answer), not bob's mapping", upn, got, err)
		}
	}
}
