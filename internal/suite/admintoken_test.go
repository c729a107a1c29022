package suite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

func TestAdminToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return name
	}
	tests := []struct {
		name, file, want, wantErr string
	}{
		{"no token file: open", "", "", ""},
		{"token with a newline", write("tok", "abc123\n"), "abc123", ""},
		{"missing file stops the start", "missing", "", "segmesh.admin.tokenFile"},
		{"empty file stops the start", write("empty", "\n"), "", "holds no token"},
		{"two words stop the start", write("two", "abc def\n"), "", "holds no token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			c.BaseDir = dir
			c.Segmesh.Admin.TokenFile = tt.file
			got, err := adminToken(&c)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("adminToken = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
