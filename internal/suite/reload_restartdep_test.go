package suite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// validatingApplier is a role group whose roles apply the settings live
// lists and, as the real roles' PrepareConfig do, refuse a configuration
// their Validate finds errors in.
type validatingApplier struct {
	live map[string][]string

	mu    sync.Mutex
	asked int
}

func (a *validatingApplier) LiveKeys() map[string][]string { return a.live }

func (a *validatingApplier) ApplyConfig(_ context.Context, next *config.Config, changed []string) error {
	a.mu.Lock()
	a.asked++
	a.mu.Unlock()
	var errs []error
	for name, keys := range a.live {
		if !slices.ContainsFunc(keys, func(k string) bool { return slices.Contains(changed, k) }) {
			continue
		}
		if err := config.ErrorOf(next.FilePath(), Validators()[name](next)); err != nil {
			errs = append(errs, fmt.Errorf("role %s: apply configuration: %s: %w", name, name, err))
		}
	}
	return errors.Join(errs...)
}

// rolesReloader is the reloader of a process running roles, started from
// the valid config.json at path, with the role group g; it returns the
// reloader and the configuration it started from.
func rolesReloader(t *testing.T, path string, roles []string, g applier) (*reloader, *config.Config) {
	t.Helper()
	boot, _, err := LoadForRun(path, roles, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := config.ErrorOf(path, Validate(boot, nil, roles)); err != nil {
		t.Fatal(err)
	}
	prov, err := telemetry.Setup(context.Background(), telemetry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prov.Shutdown(context.Background()) })
	r, err := newReloader(path, roles, boot, nil, slog.New(slog.DiscardHandler), new(slog.LevelVar), g, nil, prov.Meter.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	return r, boot
}

// kcdConfig is a config.json for an identity and ticket process.
func kcdConfig(trust string, domains []string, suffixes map[string]any) map[string]any {
	var ds []any
	for _, d := range domains {
		ds = append(ds, map[string]any{"domain": d, "domainController": "dc1." + strings.ToLower(d)})
	}
	return map[string]any{
		"clientCertTrustStorePath": trust,
		"kcd": map[string]any{"enabled": true, "targetSPN": "HTTP/mail.corp.example", "serviceAccountUserName": "svc_seg",
			"serviceAccountPassword": "Svc-Pass-1" + config.PlaintextSuffix, "domains": ds},
		"segmesh": map[string]any{"identity": map[string]any{"upnSuffixRealms": suffixes}},
	}
}

// TestReloadNamesTheRestartSettingALiveOneNeeds: a save that adds a domain
// to kcd.domains and maps a UPN suffix to it (upnSuffixRealms) in a process
// where kcd.domains takes a restart (a role using it does not apply it
// live) cannot be applied live: the identity role would be checked against
// the running domains, which lack the new one. It is refused, and the
// refusal names both settings and what to do: restart, or save the suffix
// again after the restart that applies the domain. Before, the refusal was
// the identity role's "not among the configured domains" (although the
// file has the domain) with "correct the setting the error names". Where
// every role applies kcd.domains live, the same save is applied.
func TestReloadNamesTheRestartSettingALiveOneNeeds(t *testing.T) {
	roles := []string{"identity", "ticket"}
	identityLive := []string{"kcd.domains", "segmesh.identity.upnSuffixRealms"}
	for _, tc := range []struct {
		name       string
		ticketLive []string
		refused    bool
	}{
		{"kcd.domains takes a restart", []string{"kcd.targetSPN"}, true},
		{"every role applies kcd.domains live", []string{"kcd.domains"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, trust := filepath.Join(dir, "config.json"), filepath.Join(dir, "ca.pem")
			if err := os.WriteFile(trust, testpki.NewCA(t, "Device CA").PEM(), 0o600); err != nil {
				t.Fatal(err)
			}
			writeJSON(t, path, kcdConfig(trust, []string{"CORP.EXAMPLE"}, nil))
			g := &validatingApplier{live: map[string][]string{"identity": identityLive, "ticket": tc.ticketLive}}
			r, _ := rolesReloader(t, path, roles, g)
			writeJSON(t, path, kcdConfig(trust, []string{"CORP.EXAMPLE", "OTHER.EXAMPLE"}, map[string]any{"other.example": "OTHER.EXAMPLE"}))
			err := r.Reload(context.Background(), "SIGHUP")
			st := r.Status()
			if !tc.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !slices.Contains(st.Applied, "segmesh.identity.upnSuffixRealms") || !slices.Contains(st.Applied, "kcd.domains") {
					t.Errorf("applied %v, want the domains and the suffix", st.Applied)
				}
				return
			}
			if err == nil {
				t.Fatalf("applied %v (pending %v); want the save refused", st.Applied, st.RestartPending)
			}
			if len(st.Refused) == 0 {
				t.Fatal("no refusal recorded")
			}
			var found bool
			for _, p := range st.Refused {
				text := p.Key + " " + p.Message + " " + p.Fix
				if !strings.Contains(text, "segmesh.identity.upnSuffixRealms") || !strings.Contains(text, "kcd.domains") {
					continue
				}
				found = true
				fix := p.Fix
				if !strings.Contains(fix, "restart segmesh") {
					t.Errorf("the fix %q does not say to restart", fix)
				}
				// Two saves: the suffix again after the restart that applies kcd.domains.
				after := strings.Index(fix, "after the restart")
				if after < 0 || !strings.Contains(fix[:after], "segmesh.identity.upnSuffixRealms") || !strings.Contains(fix[after:], "kcd.domains") {
					t.Errorf("the fix %q does not say to save the suffix again after the restart that applies kcd.domains", fix)
				}
				if !strings.Contains(p.Message, "takes a restart") {
					t.Errorf("the message %q does not say kcd.domains takes a restart", p.Message)
				}
			}
			if !found {
				t.Errorf("no refusal names both kcd.domains and the suffix setting: %+v", st.Refused)
			}
			if g.asked != 0 {
				t.Errorf("the roles were asked to prepare %d times; a save that cannot apply live costs no bind or AS exchange", g.asked)
			}
		})
	}
}
