package suite

import (
	"fmt"
	"os"
	"strings"

	"github.com/segmesh/segmesh/pkg/config"
)

// adminToken reads segmesh.admin.tokenFile: the bearer token the admin
// port then requires ("" when the key is empty). A missing, unreadable or
// empty file stops the start: an admin port meant to be closed must not
// open silently.
func adminToken(cfg *config.Config) (string, error) {
	f := cfg.Segmesh.Admin.TokenFile
	if f == "" {
		return "", nil
	}
	b, err := os.ReadFile(cfg.Resolve(f))
	if err != nil {
		return "", fmt.Errorf("read segmesh.admin.tokenFile: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("segmesh.admin.tokenFile %s holds no token (one line, no spaces): write a long random string, for example the output of `openssl rand -hex 32`", cfg.Resolve(f))
	}
	return tok, nil
}
