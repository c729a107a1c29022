package trust

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Spec is the trust-store configuration, as config.json holds it.
type Spec struct {
	// TrustStorePath is clientCertTrustStorePath: a comma-separated list of PEM files
	// (spaces around the commas allowed) or exactly one .pfx/.p12 file. Relative paths are
	// resolved against BaseDir. Empty or blank means no local trust store.
	TrustStorePath string
	// Passcode is clientCertTrustStorePasscode in plain text (the caller has already
	// decrypted it). Used only for a PFX; empty means the PFX is opened without a password.
	Passcode string
	// BaseDir is the install directory that relative paths start from; empty means the
	// current directory.
	BaseDir string
	// Resolve, when set, turns a relative entry into the path to open
	// (config.Config.Resolve: SEG's layout reads config/... from the install
	// directory); nil joins it to BaseDir.
	Resolve func(string) string
	// ConsoleChainPEM is the client certificate chain uploaded in the console (PEM, or one
	// DER certificate). It is used only when TrustStorePath names no file: local trust takes
	// precedence, as in SEG. Nil means none was uploaded.
	ConsoleChainPEM []byte
}

// Kind says where a Store's certificates came from.
type Kind int

const (
	// KindNone means nothing is configured: the Store is empty and accepts no device.
	KindNone Kind = iota
	// KindPEM means a list of PEM (or DER) certificate files.
	KindPEM
	// KindPFX means one PKCS#12 file.
	KindPFX
	// KindConsole means the console-uploaded chain, used because no local trust is set.
	KindConsole
)

// String names the kind for logs and config check.
func (k Kind) String() string {
	switch k {
	case KindNone:
		return "none"
	case KindPEM:
		return "PEM"
	case KindPFX:
		return "PFX"
	case KindConsole:
		return "console"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Extensions that tell the kinds apart, as pkg/config does.
var (
	pemExts = []string{".pem", ".cer", ".crt"}
	pfxExts = []string{".pfx", ".p12"}
)

func hasExt(exts []string, path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	for _, e := range exts {
		if ext == e {
			return true
		}
	}
	return false
}

// plan is what a Spec asks for, before any file is read.
type plan struct {
	kind    Kind
	entries []string // the files as configured
	paths   []string // the same, resolved against BaseDir
}

// splitPaths splits a comma-separated list, trimming spaces and dropping empty entries.
func splitPaths(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// plan checks the settings without touching the file system.
func (s Spec) plan(ps *problems) plan {
	entries := splitPaths(s.TrustStorePath)
	if len(entries) == 0 {
		if strings.TrimSpace(s.TrustStorePath) != "" {
			ps.add(SeverityWarning, KeyPath, s.TrustStorePath, "names no file; no local trust store is used", "name the CA files, or set it to \"\"", nil)
		}
		if len(s.ConsoleChainPEM) > 0 {
			return plan{kind: KindConsole}
		}
		return plan{kind: KindNone}
	}
	var pems, pfxs int
	seen := map[string]bool{}
	p := plan{entries: entries}
	for _, e := range entries {
		switch {
		case hasExt(pemExts, e):
			pems++
		case hasExt(pfxExts, e):
			pfxs++
		default:
			ps.add(SeverityError, KeyPath, e, "is neither a PEM (.pem, .cer, .crt) nor a PFX (.pfx, .p12) file",
				"convert the certificate to PEM or PFX and name that file", nil)
		}
		path := e
		if !filepath.IsAbs(path) {
			if s.Resolve != nil {
				path = s.Resolve(path)
			} else {
				path = filepath.Join(s.BaseDir, path)
			}
		}
		if seen[path] {
			ps.add(SeverityWarning, KeyPath, e, "is listed more than once", "list each file once", nil)
			continue
		}
		seen[path] = true
		p.paths = append(p.paths, path)
		p.entries[len(p.paths)-1] = e
	}
	p.entries = p.entries[:len(p.paths)]
	switch {
	case pems > 0 && pfxs > 0:
		ps.add(SeverityError, KeyPath, s.TrustStorePath, "names both PEM and PFX files; SEG allows one kind",
			"keep the PEM list (passcode \"\") or the one PFX (with its passcode)", nil)
	case pfxs > 1:
		ps.add(SeverityError, KeyPath, s.TrustStorePath, "names more than one PFX file; SEG reads a single PFX",
			"combine the CA certificates into one PFX, or list them as PEM files", nil)
	case pfxs == 1:
		p.kind = KindPFX
	default:
		p.kind = KindPEM
		if s.Passcode != "" {
			ps.add(SeverityWarning, KeyPasscode, maskPasscode(s.Passcode), "is set, but PEM files have no passcode; the value is not used",
				`set it to ""`, nil)
		}
	}
	return p
}
