package cli

import (
	"fmt"
	"io"

	"github.com/segmesh/segmesh/pkg/config"
)

// configEncrypt encrypts the secrets of a config.json that are written with
// the .plaintext suffix, the same rewrite `segmesh run` does at start, without
// running anything: for preparing a file before it goes into a Kubernetes
// Secret or onto a VM.
func configEncrypt(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("config encrypt", "config encrypt [config.json]",
		"Encrypts every secret written with the .plaintext suffix (AES-256-GCM, key in config.key beside the file, or segmesh.secretKeyFile, SEGMESH_CONFIG_KEY, SEGMESH_CONFIG_KEY_FILE) and rewrites the file atomically with nothing else changed.", stderr)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	path, err := fileArg("config encrypt", pos)
	if err != nil {
		return err
	}
	done, err := config.EncryptPlaintextSecrets(path, nil)
	if err != nil {
		return err
	}
	if len(done) == 0 {
		_, _ = fmt.Fprintf(stdout, "%s: no secret ends in %s; nothing to encrypt\n", path, config.PlaintextSuffix)
		return nil
	}
	for _, k := range done {
		_, _ = fmt.Fprintf(stdout, "encrypted %s\n", k)
	}
	_, _ = fmt.Fprintf(stdout, "%s rewritten; keep its key with it (the file is useless without it)\n", path)
	return nil
}
