//go:build lab

package reliability

import (
	"net/http"
	"testing"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/test/reliability/segproc"
)

// TestLabBaseline checks the harness itself: segmesh as a process on the
// lab's config serves alice and bob.
func TestLabBaseline(t *testing.T) {
	lab := labenv.Up(t)
	p := segproc.Start(t, segproc.WriteConfig(t, t.TempDir(), segproc.LabConfig(t, lab)))
	for _, tc := range []struct{ user, want string }{
		{"alice", "alice"},
		{"bob", "bob.smith"},
	} {
		t.Run(tc.user, func(t *testing.T) {
			r := segproc.Do(segproc.Client(t, lab, tc.user), http.MethodGet, p.URL(segproc.EAS("FolderSync", tc.user)), nil)
			e, ok := r.Echo()
			if !ok || segproc.Account(e.RemoteUser) != tc.want {
				t.Fatalf("%s: %v, want Exchange to see %s", tc.user, r, tc.want)
			}
		})
	}
}
