package suite

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/segmesh/segmesh/pkg/config"
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
// meant to be closed must not open silently. The file is opened without
// blocking and checked on the open descriptor, so a FIFO swapped in after
// a check by path does not hang a reload.
func adminToken(cfg *config.Config) (string, error) {
	f := cfg.Segmesh.Admin.TokenFile
	if f == "" {
		return "", nil
	}
	path := cfg.Resolve(f)
	fh, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", fmt.Errorf("read segmesh.admin.tokenFile: %w", err)
	}
	defer func() { _ = fh.Close() }()
	fi, err := fh.Stat()
	if err != nil {
		return "", fmt.Errorf("read segmesh.admin.tokenFile: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("read segmesh.admin.tokenFile: %s is not a regular file", path)
	}
	if fi.Size() > maxTokenFile {
		return "", fmt.Errorf("segmesh.admin.tokenFile %s is %d bytes, not a token file (one line of at most %d bytes): name the file holding the token", path, fi.Size(), maxTokenFile)
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("read segmesh.admin.tokenFile: %w", err)
	}
	if len(b) > maxTokenFile {
		return "", fmt.Errorf("segmesh.admin.tokenFile %s grew past %d bytes while read: name the file holding the token", path, maxTokenFile)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("segmesh.admin.tokenFile %s holds no token (one line, no spaces): write a long random string, for example the output of `openssl rand -hex 32`", path)
	}
	return tok, nil
}
