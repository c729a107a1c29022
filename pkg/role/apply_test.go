package role

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// applyingRole is a fakeRole that applies configurations live: in force is
// the log level of the configuration it runs on.
type applyingRole struct {
	*fakeRole
	keys []string
	fail error

	mu      sync.Mutex
	inForce string
}

func (a *applyingRole) LiveKeys() []string { return a.keys }

func (a *applyingRole) PrepareConfig(_ context.Context, next *config.Config) (func(), error) {
	if a.fail != nil {
		return nil, a.fail
	}
	level := next.Segmesh.Telemetry.LogLevel
	return func() {
		a.mu.Lock()
		a.inForce = level
		a.mu.Unlock()
	}, nil
}

func (a *applyingRole) current() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inForce
}

// TestGroupApplyConfigNeverLeavesAMix: when one role cannot take the new
// configuration, no role switches to it (a reload is all or nothing), and
// the error names the role that refused; when all can, all switch.
func TestGroupApplyConfigNeverLeavesAMix(t *testing.T) {
	cases := []struct {
		name    string
		failing string // role whose prepare fails; "" for none
		want    string // log level each applying role runs on afterwards
		wantErr string
	}{
		{name: "ticket fails, crl and edge stay", failing: Ticket, want: "info", wantErr: "role ticket: apply configuration: KDC refused"},
		{name: "edge fails, crl and ticket stay", failing: Edge, want: "info", wantErr: "role edge: apply configuration: KDC refused"},
		{name: "all prepare, all switch", want: "debug"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := &journal{}
			cs := ctors(j, "", nil)
			appliers := map[string]*applyingRole{}
			for _, n := range []string{CRL, Ticket, Edge} {
				cs[n] = func(Deps) (Role, error) {
					a := &applyingRole{fakeRole: &fakeRole{name: n, journal: j}, keys: []string{"segmesh.telemetry.logLevel"}, inForce: "info"}
					if n == tc.failing {
						a.fail = errors.New("KDC refused")
					}
					appliers[n] = a
					return a, nil
				}
			}
			g, err := NewGroup(GroupOptions{Config: testConfig(), Constructors: cs})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := g.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = g.Stop(ctx) })
			next := testConfig()
			next.Segmesh.Telemetry.LogLevel = "debug"
			err = g.ApplyConfig(ctx, next, []string{"segmesh.telemetry.logLevel"})
			if tc.wantErr == "" && err != nil {
				t.Fatalf("ApplyConfig: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("ApplyConfig error = %v, want it to say %q", err, tc.wantErr)
			}
			for n, a := range appliers {
				if got := a.current(); got != tc.want {
					t.Errorf("role %s runs on log level %q after the reload, want %q (a reload must not leave a mix)", n, got, tc.want)
				}
			}
		})
	}
}
