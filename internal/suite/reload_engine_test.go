package suite

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/services/edge"
)

// realEdgeApplier is a role group of an edge that applies live what
// services/edge applies live (its LiveKeys); it records the
// configurations it is given.
type realEdgeApplier struct{ edgeLiveApplier }

func (*realEdgeApplier) LiveKeys() map[string][]string {
	return map[string][]string{"edge": (*edge.Service)(nil).LiveKeys()}
}

// TestReloadEngineTakesARestart: segmesh.edge.http1Engine (and the relay's
// segmesh.edge.relayMaxConnsPerHost) are not switched by a reload: every
// request reads the engine and its pool without a lock, and connections of
// the old engine would have to be drained (issue 25's follow-up, item 4).
// A save changing them is not applied to the edge, and what the process
// shows says so: both named as waiting for a restart, on /status (the
// problem's message and fix) and /readyz, while a live setting of the
// same save is applied.
func TestReloadEngineTakesARestart(t *testing.T) {
	dir := t.TempDir()
	ca, serverCA := testpki.NewCA(t, "Device CA"), testpki.NewCA(t, "Server CA")
	store := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(store, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := serverCA.Server(t, []string{"127.0.0.1"}).WriteFiles(t, dir, "edge")
	file := func(engine string, maxConns int, exchange string) map[string]any {
		return map[string]any{
			"clientCertTrustStorePath": store,
			"kcd":                      map[string]any{"enabled": false},
			"segmesh": map[string]any{"edge": map[string]any{
				"listen": "127.0.0.1:0", "serverCertFile": certFile, "serverKeyFile": keyFile,
				"exchangeUrls": []string{exchange}, "http1Engine": engine, "relayMaxConnsPerHost": maxConns}},
		}
	}
	path := filepath.Join(dir, "config.json")
	writeJSON(t, path, file("relay", 0, "https://mail1.corp.example"))
	g := &realEdgeApplier{}
	r, _ := rolesReloader(t, path, []string{"edge"}, g)
	writeJSON(t, path, file("net/http", 64, "https://mail2.corp.example"))
	if err := r.Reload(context.Background(), "SIGHUP"); err != nil {
		t.Fatal(err)
	}
	st := r.Status()
	want := []string{"segmesh.edge.http1Engine", "segmesh.edge.relayMaxConnsPerHost"}
	if !sameSet(st.RestartPending, want) {
		t.Errorf("waiting for a restart %v, want %v", st.RestartPending, want)
	}
	if !slices.Contains(st.Applied, "segmesh.edge.exchangeUrls") {
		t.Errorf("applied %v, want the Exchange URLs (live)", st.Applied)
	}
	if len(g.given) != 1 || g.given[0].Segmesh.Edge.HTTP1Engine != "relay" || g.given[0].Segmesh.Edge.RelayMaxConnsPerHost != 0 {
		t.Fatalf("the edge was given %d configurations (%+v), want one with the running engine and cap", len(g.given), g.given)
	}
	var shown []config.Problem
	for _, p := range r.Problems() {
		if slices.Contains(want, p.Key) {
			shown = append(shown, p)
		}
	}
	if len(shown) != len(want) {
		t.Fatalf("/status shows %+v, want a problem for each of %v", shown, want)
	}
	for _, p := range shown {
		if !strings.Contains(p.Message, "takes a restart") || !strings.Contains(p.Fix, "restart segmesh") {
			t.Errorf("%s: %q / %q, want it said that it takes a restart and how to restart", p.Key, p.Message, p.Fix)
		}
	}
	if notes := strings.Join(r.Notes(), "\n"); !strings.Contains(notes, "segmesh.edge.http1Engine") {
		t.Errorf("/readyz notes %q do not name the engine as waiting for a restart", notes)
	}
}
