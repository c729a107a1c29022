package cli

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/suite"
	"github.com/segmesh/segmesh/pkg/config"
)

// TestConfigCheckRolesNamesThePeersRunNeeds: `config check --roles edge`
// checks the file as `segmesh run --roles edge` uses it: with KCD on, the
// identity and ticket roles run elsewhere need segmesh.peers addresses, and
// run now refuses their absence as a config error before any role is built
// (before, the edge's Start stopped on it while config check passed).
func TestConfigCheckRolesNamesThePeersRunNeeds(t *testing.T) {
	path := writeStrict(t, t.TempDir(), func(map[string]any) {})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runErr := suite.Run(ctx, suite.Options{ConfigPath: path, Roles: "edge", Stderr: &strings.Builder{}, Ready: func(string) { cancel() }})
	var ce *config.Error
	if !errors.As(runErr, &ce) {
		t.Fatalf("run --roles edge: %v; want a *config.Error naming segmesh.peers", runErr)
	}
	code, out, _ := run(t, "config", "check", "-q", "--roles", "edge", path)
	if code != 1 {
		t.Fatalf("config check --roles edge: exit %d, want 1:\n%s", code, out)
	}
	for _, p := range ce.Problems {
		if !strings.Contains(out, p.String()) {
			t.Errorf("run refused with\n  %s\nwhich config check --roles edge does not say:\n%s", p, out)
		}
	}
	for _, key := range []string{"segmesh.peers.identity", "segmesh.peers.ticket"} {
		if !strings.Contains(out, "error: "+key) {
			t.Errorf("config check --roles edge does not name %s:\n%s", key, out)
		}
	}
	if strings.Contains(out, "segmesh.peers.crl") {
		t.Errorf("revocation is off, yet the crl role's address is asked for:\n%s", out)
	}

	for _, tc := range []struct {
		name string
		args []string
		peer bool
		want int
	}{
		{"every role in this process", nil, false, 0},
		{"the peers given", []string{"--roles", "edge"}, true, 0},
		{"the edge beside identity and ticket", []string{"--roles", "identity,ticket,edge"}, false, 0},
		{"an unknown role", []string{"--roles", "edge,nope"}, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeStrict(t, t.TempDir(), func(m map[string]any) {
				if tc.peer {
					m["segmesh"].(map[string]any)["peers"] = map[string]any{"identity": "10.0.0.5:9443", "ticket": "dns:///ticket.seg.svc:9443"}
				}
			})
			args := append(append([]string{"config", "check", "-q"}, tc.args...), p)
			if code, out, errOut := run(t, args...); code != tc.want {
				t.Fatalf("config check %v: exit %d, want %d:\n%s%s", tc.args, code, tc.want, out, errOut)
			}
		})
	}
}
