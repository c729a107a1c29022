package suite

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
)

// edgeLiveApplier is a role group of an edge and a crl role in which only
// the edge applies the trust-store settings live (as services/edge does);
// it records the configurations it is given.
type edgeLiveApplier struct {
	mu    sync.Mutex
	given []*config.Config
}

func (f *edgeLiveApplier) LiveKeys() map[string][]string {
	return map[string][]string{"edge": {"segmesh.edge.exchangeUrls", "clientCertTrustStorePath"}}
}

func (f *edgeLiveApplier) ApplyConfig(_ context.Context, next *config.Config, changed []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(changed) > 0 {
		f.given = append(f.given, next)
	}
	return nil
}

// TestReloadSharedSettingNeedsEveryRole: a setting two roles of the process
// use (the trust store: edge and crl) is live only when both apply it. When
// one of them cannot, it is named as waiting for a restart and no role is
// given the new value (the edge would otherwise trust a CA whose CRLs the
// crl role refuses, a mix nobody is told about); a setting only the edge
// uses is applied in the same reload.
func TestReloadSharedSettingNeedsEveryRole(t *testing.T) {
	dir := t.TempDir()
	ca, serverCA := testpki.NewCA(t, "Device CA"), testpki.NewCA(t, "Server CA")
	for _, f := range []string{"ca1.pem", "ca2.pem"} {
		if err := os.WriteFile(filepath.Join(dir, f), ca.PEM(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	certFile, keyFile := serverCA.Server(t, []string{"127.0.0.1"}).WriteFiles(t, dir, "edge")
	file := func(store, exchange string) map[string]any {
		return map[string]any{
			"clientCertTrustStorePath": store,
			"kcd":                      map[string]any{"enabled": false},
			"segmesh": map[string]any{"edge": map[string]any{
				"listen": "127.0.0.1:0", "serverCertFile": certFile, "serverKeyFile": keyFile,
				"exchangeUrls": []string{exchange}}},
		}
	}
	path := filepath.Join(dir, "config.json")
	roles := []string{"crl", "edge"}
	writeJSON(t, path, file(filepath.Join(dir, "ca1.pem"), "https://mail1.corp.example"))
	g := &edgeLiveApplier{}
	r, boot := rolesReloader(t, path, roles, g)
	writeJSON(t, path, file(filepath.Join(dir, "ca2.pem"), "https://mail2.corp.example"))
	if err := r.Reload(context.Background(), "SIGHUP"); err != nil {
		t.Fatal(err)
	}
	st := r.Status()
	if !slices.Contains(st.RestartPending, "clientCertTrustStorePath") || slices.Contains(st.Applied, "clientCertTrustStorePath") {
		t.Errorf("trust store path: applied %v, pending %v; want it waiting for a restart (the crl role does not apply it)", st.Applied, st.RestartPending)
	}
	if !slices.Contains(st.Applied, "segmesh.edge.exchangeUrls") {
		t.Errorf("applied %v, want the Exchange URLs (the edge alone uses them)", st.Applied)
	}
	if len(g.given) != 1 {
		t.Fatalf("the group was given %d configurations, want 1", len(g.given))
	}
	if got := g.given[0].ClientCertTrustStorePath; got != boot.ClientCertTrustStorePath {
		t.Errorf("the roles were given trust store %q, want the one in force %q (a setting waiting for a restart is applied by no role)", got, boot.ClientCertTrustStorePath)
	}
	if got := g.given[0].Segmesh.Edge.ExchangeURLs; len(got) != 1 || got[0] != "https://mail2.corp.example" {
		t.Errorf("the roles were given Exchange URLs %v, want the new one", got)
	}
}
