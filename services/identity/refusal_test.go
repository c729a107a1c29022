package identity

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
	"github.com/segmesh/segmesh/pkg/config"
)

// testClock is a clock a test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestPrepareConfigRemembersARefusedPassword: a bind password the
// directory refused (LDAP 49, invalid credentials) is not presented again
// by the next reloads for a while: each failed bind counts towards the
// service account's lockout (AD's badPwdCount), and segmesh run reloads a
// file twice when it encrypts a ".plaintext" secret in it. The refusal
// says it was not asked again and until when. Another password, the same
// one once the memory has passed, and a password that met no answer (a
// directory that is down) are asked. Failed on main:
// every reload bound with the refused password.
func TestPrepareConfigRemembersARefusedPassword(t *testing.T) {
	d := newDirectory(t, ldaptest.Options{})
	clock := &testClock{t: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)}
	svc, _, err := startService(t, testConfig(d), nil, WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	url := d.srv.URL("")
	for _, s := range []struct {
		name      string
		next      *config.Config
		before    func()
		wantBinds int64
		wantErr   string // empty: applied
	}{
		{name: "a wrong password", next: fullConfig(url, "Wr0ng-1", nil), wantBinds: 1, wantErr: "Invalid Credentials"},
		{name: "the same wrong password again", next: fullConfig(url, "Wr0ng-1", nil), wantBinds: 0, wantErr: "not asked again before 2026-12-05T12:01:00Z"},
		{name: "another wrong password", next: fullConfig(url, "Wr0ng-2", nil), wantBinds: 1, wantErr: "Invalid Credentials"},
		{name: "the first one, still remembered", next: fullConfig(url, "Wr0ng-1", nil), before: func() { clock.Add(59 * time.Second) },
			wantBinds: 0, wantErr: "not asked again"},
		{name: "the first one once the memory passed", next: fullConfig(url, "Wr0ng-1", nil), before: func() { clock.Add(2 * time.Second) },
			wantBinds: 1, wantErr: "Invalid Credentials"},
		{name: "a directory that does not answer", next: fullConfig(closedURL(t), "Wr0ng-3", nil), wantBinds: 0, wantErr: "do not work"},
		{name: "that password at the directory (no answer is not a refusal)", next: fullConfig(url, "Wr0ng-3", nil),
			wantBinds: 1, wantErr: "Invalid Credentials"},
		{name: "the password the admin set in AD meanwhile", next: fullConfig(url, "Wr0ng-3", nil), before: func() { d.srv.AddBind(bindDN, "Wr0ng-3") },
			wantBinds: 0, wantErr: "not asked again"},
		{name: "that password once the memory passed", next: fullConfig(url, "Wr0ng-3", nil), before: func() { clock.Add(time.Minute) },
			wantBinds: 1},
	} {
		if s.before != nil {
			s.before()
		}
		before := d.srv.Binds()
		commit, err := svc.PrepareConfig(context.Background(), s.next)
		if got := d.srv.Binds() - before; got != s.wantBinds {
			t.Errorf("%s: %d binds, want %d", s.name, got, s.wantBinds)
		}
		switch {
		case s.wantErr == "" && err != nil:
			t.Fatalf("%s: PrepareConfig = %v", s.name, err)
		case s.wantErr == "":
			commit()
		case err == nil || !strings.Contains(err.Error(), s.wantErr):
			t.Fatalf("%s: PrepareConfig = %v, want an error with %q", s.name, err, s.wantErr)
		case strings.Contains(err.Error(), "Wr0ng"):
			t.Errorf("%s: the refusal shows the password: %v", s.name, err)
		}
	}
}
