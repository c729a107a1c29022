package suite

import (
	"fmt"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/rpc"
)

// startFileProblems returns what run would refuse at the start, beyond
// config.Load and the roles' Validate, in the files the process itself (not
// a role) reads: segmesh.admin.tokenFile (adminToken) and the gRPC mTLS
// files (splitMode). Validate includes them, so `segmesh run` refuses them
// as a config error, `segmesh config check` prints them, and a reload
// refuses a save a restart would refuse instead of naming it as waiting
// for a restart (found at the next reboot). A file that is not a regular
// file (a FIFO, a directory) is refused before it is read, so that a check
// or a reload never blocks on it.
func startFileProblems(cfg *config.Config) []config.Problem {
	var out []config.Problem
	if f := cfg.Segmesh.Admin.TokenFile; f != "" {
		p := config.Problem{Severity: config.SeverityError, Key: "segmesh.admin.tokenFile", Value: f,
			Fix: "write the bearer token (one line, for example the output of `openssl rand -hex 32`) into that file, or remove segmesh.admin.tokenFile to leave the admin port open"}
		if path := cfg.Resolve(f); !isRegular(path) {
			p.Message = fmt.Sprintf("read segmesh.admin.tokenFile: %s is missing or not a regular file", path)
			out = append(out, p)
		} else if _, err := adminToken(cfg); err != nil {
			p.Message = err.Error()
			out = append(out, p)
		}
	}
	g := cfg.Segmesh.GRPC
	if g.CertFile == "" || g.KeyFile == "" || g.CAFile == "" {
		return out // none (plaintext), or config.Load's "all three together"
	}
	files := rpc.TLSFiles{CertFile: cfg.Resolve(g.CertFile), KeyFile: cfg.Resolve(g.KeyFile), CAFile: cfg.Resolve(g.CAFile)}
	fix := "name the PEM certificate, its private key and the CA that issued the roles' certificates (segmesh.grpc.certFile, keyFile, caFile), or remove all three for plaintext on loopback or inside a mesh"
	for _, f := range []struct{ key, path string }{{"segmesh.grpc.certFile", files.CertFile},
		{"segmesh.grpc.keyFile", files.KeyFile}, {"segmesh.grpc.caFile", files.CAFile}} {
		if key, path := f.key, f.path; !isRegular(path) {
			out = append(out, config.Problem{Severity: config.SeverityError, Key: key, Value: path,
				Message: "is missing or not a regular file: the start would stop", Fix: fix})
			return out
		}
	}
	if _, err := rpc.ClientCredentials(files); err != nil {
		out = append(out, config.Problem{Severity: config.SeverityError, Key: "segmesh.grpc.certFile", Value: g.CertFile,
			Message: err.Error() + ": the start would stop", Fix: fix})
	}
	return out
}
