package suite

import (
	"errors"
	"fmt"
	"strings"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/safefile"
)

// maxTokenFile is the largest admin token file read: a token is one line
// (`openssl rand -hex 32` is 65 bytes). Every reload and `config check`
// read the file (startFileProblems): a tokenFile naming a log file or a
// disk image must be refused, not read whole into the running gateway's
// memory.
const maxTokenFile = 4 << 10

// adminToken reads segmesh.admin.tokenFile: the bearer token the admin
// port then requires ("" when the key is empty). A missing, unreadable,
// empty, oversized or non-regular file stops the start: an admin port
// meant to be closed must not open silently. So does a file other local
// users may read or replace (safefile.CheckPrivate, as for the secrets
// key): whoever reads the token holds the admin port. The file is opened
// without blocking and checked on the open descriptor, so a FIFO or
// another file swapped in after a check by path is not what is read.
func adminToken(cfg *config.Config) (string, error) {
	f := cfg.Segmesh.Admin.TokenFile
	if f == "" {
		return "", nil
	}
	path := cfg.Resolve(f)
	b, err := safefile.ReadPrivate(path, maxTokenFile)
	if e, ok := errors.AsType[*safefile.ExposedError](err); ok {
		return "", fmt.Errorf("segmesh.admin.tokenFile %s: %s, and whoever reads the token holds the admin port (fix: %s)", path, e.About(path), e.Fix)
	}
	if errors.Is(err, safefile.ErrTooLarge) {
		return "", fmt.Errorf("segmesh.admin.tokenFile %s is larger than %d bytes, not a token file (one line): name the file holding the token", path, maxTokenFile)
	}
	if err != nil {
		return "", fmt.Errorf("read segmesh.admin.tokenFile: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("segmesh.admin.tokenFile %s holds no token (one line, no spaces): write a long random string, for example the output of `openssl rand -hex 32`", path)
	}
	return tok, nil
}
