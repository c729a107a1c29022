//go:build lab

package security

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/pkg/admin"
	"github.com/segmesh/segmesh/test/reliability/segproc"
)

// TestLabAdminPortClosed runs segmesh against the lab with
// segmesh.admin.tokenFile set and showPersonalData off (the default), makes
// refusals that name users and certificates (alice-revoked in the
// handshake, eve at the KDC), and checks the admin port: the probes' paths
// open, everything else 401 without the token, and with it /status.json and
// /status free of the users' names (issue 19 item 8).
func TestLabAdminPortClosed(t *testing.T) {
	lab := labenv.Up(t)
	dir := t.TempDir()
	const token = "0123456789abcdef0123456789abcdef"
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := segproc.LabConfig(t, lab)
	segproc.Set(cfg, "admin.token", "segmesh", "admin", "tokenFile")
	p := segproc.Start(t, segproc.WriteConfig(t, dir, cfg))

	for _, u := range []struct {
		user string
		ok   bool
	}{{"alice", true}, {"alice-revoked", false}, {"eve", false}} {
		r := segproc.Do(segproc.Client(t, lab, u.user), http.MethodPost, p.URL(segproc.EAS("Sync", u.user)), nil)
		if (r.Status == 200) != u.ok {
			t.Fatalf("%s: %v (want success %v)", u.user, r, u.ok)
		}
	}
	get := func(path, auth string) segproc.Result {
		hdr := http.Header{}
		if auth != "" {
			hdr.Set("Authorization", auth)
		}
		return segproc.Do(http.DefaultClient, http.MethodGet, p.AdminURL(path), hdr)
	}
	for _, tt := range []struct {
		path, auth string
		want       int
	}{
		{"/healthz", "", 200}, {"/readyz", "", 200},
		{"/metrics", "", 401}, {"/status", "", 401}, {"/status.json", "", 401}, {"/status.json", "Bearer wrong", 401},
		{"/metrics", "Bearer " + token, 200},
	} {
		if r := get(tt.path, tt.auth); r.Status != tt.want {
			t.Errorf("%s (auth %q): %v, want %d", tt.path, tt.auth, r, tt.want)
		}
	}
	// The refusals reach the status page within its refresh.
	deadline := time.Now().Add(10 * time.Second)
	var status string
	for {
		status = string(get("/status.json", "Bearer "+token).Body)
		if strings.Contains(status, "recent_refusals") && strings.Count(status, `"reason"`) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	page := string(get("/status", "Bearer "+token).Body)
	if !strings.Contains(status, admin.Hidden) {
		t.Fatalf("/status.json shows no hidden value:\n%.2000s", status)
	}
	for name, out := range map[string]string{"/status.json": status, "/status": page} {
		for _, v := range []string{"eve@lab.test", "alice-revoked", "alice@lab.test"} {
			if strings.Contains(out, v) {
				t.Errorf("%s shows %q with showPersonalData off", name, v)
			}
		}
	}
}
