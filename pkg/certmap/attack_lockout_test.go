package certmap

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
)

// TestAttackRefusedPasswordAtRunTimeIsNotRetriedPerLookup (review rvtls):
// the service account's password is changed in AD (a rotation) while the
// running mapping still holds the old one. Every mapping lookup that finds
// no bound connection dials and binds again, and each refused bind counts
// towards the account's lockout (badPwdCount): devices arriving one after
// another lock the account out within seconds, for every other service
// that uses it. The identity role's refused-password memory (8eacb52)
// covers reloads only. Once the directory refused the credentials, a
// lookup must not present them again for a while; it gets the refusal,
// saying so, and binds again after the memory.
func TestAttackRefusedPasswordAtRunTimeIsNotRetriedPerLookup(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	clk := newClock()
	m := newMapper(t, l.config(clk))
	ctx := context.Background()
	if _, err := m.Map(ctx, l.alice.Raw); err != nil {
		t.Fatal(err)
	}
	// The password rotated in AD; the directory restarts (or drops idle
	// connections), so the next lookups dial and bind again.
	l.srv.AddBind(testBindDN, "rotated-in-AD")
	l.srv.Stop()
	if err := l.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	before := l.srv.Binds()
	devices := [][]byte{l.bob.Raw, l.carol.Raw, l.mallory.Raw, l.dup.Raw, l.unpublished.Raw, l.noUPNUser.Raw}
	for i, der := range devices {
		_, err := m.Map(ctx, der)
		var be *BindError
		if !errors.As(err, &be) || !be.CredentialsRefused() {
			t.Fatalf("lookup %d: %v, want the bind refusal", i+1, err)
		}
	}
	if got := l.srv.Binds() - before; got != 1 {
		t.Fatalf("%d lookups presented the refused password %d times, want once (each refused bind counts towards the lockout)", len(devices), got)
	}
	// The memory passes: the next lookup asks again (and the admin may
	// have put the password back meanwhile).
	l.srv.AddBind(testBindDN, testPassword)
	clk.Advance(time.Minute)
	if _, err := m.Map(ctx, l.bob.Raw); err != nil {
		t.Fatalf("lookup after the memory passed: %v", err)
	}
}
