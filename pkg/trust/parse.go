package trust

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"strings"
	"time"

	"github.com/segmesh/segmesh/pkg/pfx"
	"github.com/segmesh/segmesh/pkg/safefile"
)

// maxFileSize bounds what is read from one trust-store file; a few CA certificates take a
// few kilobytes.
const maxFileSize = 4 << 20

// sourced is a certificate and the file (or setting) it came from.
type sourced struct {
	cert   *x509.Certificate
	origin string // the file as configured, or "" for the console chain
	key    string // the setting it belongs to
}

// readFile reads a regular file of at most maxFileSize bytes. It opens
// without blocking and checks the open descriptor: a FIFO (a plain open
// blocks until a writer comes) or a device (a link to /dev/zero) named as
// the trust store would otherwise hang or feed every reload's Validate and
// the Reloader's poll. It refuses a file another local user could replace
// (safefile.CheckReplaceable: group or others may write it or a directory
// above it, or another user owns one): whoever writes the trust store adds
// a CA of theirs and issues a certificate naming any user.
func readFile(path string) ([]byte, error) {
	data, err := safefile.ReadTrusted(path, maxFileSize)
	if errors.Is(err, safefile.ErrTooLarge) {
		return nil, fmt.Errorf("%s is larger than %d bytes, too large for a trust store", path, maxFileSize)
	}
	return data, err
}

// readFix is the fix for readFile's error: the chmod or chown of a file
// another user could replace, else fix.
func readFix(err error, fix string) string {
	if e, ok := errors.AsType[*safefile.ExposedError](err); ok {
		return e.Fix
	}
	return fix
}

// readProblem words a read error of the file at path for the operator.
func readProblem(err error, path, baseDir string) string {
	where := baseDir
	if where == "" {
		where = "the current directory"
	}
	if e, ok := errors.AsType[*safefile.ExposedError](err); ok {
		return e.Explain(path, "replace")
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist (relative paths are resolved against " + where + ")"
	case errors.Is(err, fs.ErrPermission):
		return "cannot be read: permission denied"
	}
	return "cannot be read: " + err.Error()
}

// writeFingerprint feeds one file (or its read error) into the Store fingerprint.
func writeFingerprint(h hash.Hash, path string, data []byte, err error) {
	h.Write([]byte(path))
	h.Write([]byte{0})
	if err != nil {
		h.Write([]byte("error: " + err.Error()))
		return
	}
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(data))))
	h.Write(data)
}

// parsePEMFile returns the certificates of one PEM file (or a DER certificate, as .cer
// files often are). origin is the file as configured ("" for the console chain) and key the
// setting that names it.
func parsePEMFile(data []byte, origin, key string, ps *problems) []sourced {
	var out []sourced
	value := origin
	sawPEM := false
	parseErrs := 0
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		sawPEM = true
		switch {
		case block.Type == "CERTIFICATE":
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				parseErrs++
				ps.add(SeverityError, key, value, fmt.Sprintf("certificate %d cannot be parsed: %v", len(out)+1, err),
					"export the CA certificate again in PEM (Base-64) form", err)
				continue
			}
			out = append(out, sourced{cert: cert, origin: origin, key: key})
		case strings.Contains(block.Type, "PRIVATE KEY"):
			ps.add(SeverityWarning, key, value, "holds a private key ("+block.Type+"), which a trust store neither needs nor uses",
				"keep only the CA certificates in the file and protect the key elsewhere", nil)
		default:
			ps.add(SeverityWarning, key, value, "holds a "+block.Type+" block, which is ignored", "", nil)
		}
	}
	if !sawPEM {
		// A binary .cer: one or more DER certificates.
		// The DER bytes as they are first: a signature's last byte may be a
		// white-space byte. Then trimmed, for a file an editor ended with a newline.
		certs, err := x509.ParseCertificates(data)
		if err != nil || len(certs) == 0 {
			certs, err = x509.ParseCertificates(bytes.TrimSpace(data))
		}
		if err == nil && len(certs) > 0 {
			for _, c := range certs {
				out = append(out, sourced{cert: c, origin: origin, key: key})
			}
			return out
		}
	}
	if len(out) == 0 && parseErrs == 0 {
		ps.add(SeverityError, key, value, "holds no certificate (no PEM CERTIFICATE block, and not a DER certificate)",
			"put the CA certificates in it as -----BEGIN CERTIFICATE----- blocks", nil)
	}
	return out
}

// parsePFXFile returns the certificates of the PFX trust store.
func parsePFXFile(data []byte, origin, passcode string, ps *problems) []sourced {
	certs, err := pfx.Decode(data, passcode)
	var unsupported *pfx.UnsupportedError
	switch {
	case err == nil:
	case errors.Is(err, pfx.ErrIncorrectPassword) && passcode == "":
		ps.add(SeverityError, KeyPasscode, "", "is empty, but the PFX "+origin+" is password-protected",
			`set the PFX's password (write it with the suffix ".plaintext"; it is encrypted at the next start)`, err)
		return nil
	case errors.Is(err, pfx.ErrIncorrectPassword):
		msg := "does not open the PFX " + origin + " (its integrity check fails with this password)"
		if strings.HasSuffix(passcode, ".plaintext") {
			msg += `; the value still ends in ".plaintext", which is not part of the password`
		}
		ps.add(SeverityError, KeyPasscode, maskPasscode(passcode), msg,
			`set the password the PFX was exported with (with the suffix ".plaintext"; it is encrypted at the next start)`, err)
		return nil
	case errors.Is(err, pfx.ErrNoMAC):
		ps.add(SeverityError, KeyPath, origin, "has no integrity check (MAC): anyone who can write it could change the trusted CAs without knowing the passcode",
			"export it again with a MAC (openssl pkcs12 -export -nokeys without -nomac; Windows always writes one), or list the CAs as PEM files", err)
		return nil
	case errors.As(err, &unsupported):
		ps.add(SeverityError, KeyPath, origin, "uses a format segmesh cannot read: "+err.Error(),
			"export it again with openssl pkcs12 -export -nokeys (AES-256) or Windows (TripleDES-SHA1 or AES256-SHA256), or list the CAs as PEM files", err)
		return nil
	default:
		ps.add(SeverityError, KeyPath, origin, "is not a readable PFX: "+err.Error(),
			"copy the file again in binary mode, or list the CAs as PEM files", err)
		return nil
	}
	if len(certs) == 0 {
		ps.add(SeverityError, KeyPath, origin, "holds no certificate",
			"export the issuing CA certificates into it (openssl pkcs12 -export -nokeys -in cas.pem -out cas.pfx)", nil)
		return nil
	}
	if passcode == "" {
		ps.add(SeverityWarning, KeyPasscode, "", "is empty and the PFX "+origin+" opens without a password",
			"", nil)
	}
	out := make([]sourced, len(certs))
	for i, c := range certs {
		out[i] = sourced{cert: c, origin: origin, key: KeyPath}
	}
	return out
}

// checkCertificates warns about certificates that cannot act as CAs or are outside their
// validity, and returns the certificates without duplicates.
func checkCertificates(certs []sourced, now time.Time, ps *problems) []*x509.Certificate {
	seen := map[string]bool{}
	var out []*x509.Certificate
	for _, s := range certs {
		c := s.cert
		name := describe(c)
		if seen[string(c.Raw)] {
			ps.add(SeverityWarning, s.key, s.origin, fmt.Sprintf("certificate %s appears more than once", name), "", nil)
			continue
		}
		seen[string(c.Raw)] = true
		out = append(out, c)
		if !c.BasicConstraintsValid || !c.IsCA {
			ps.add(SeverityWarning, s.key, s.origin,
				fmt.Sprintf("certificate %s is not a CA certificate; it is trusted only when a device presents exactly this certificate", name),
				"if it is a device certificate, replace it with the certificate of the CA that issued it", nil)
		}
		switch {
		case now.After(c.NotAfter):
			ps.add(SeverityWarning, s.key, s.origin,
				fmt.Sprintf("certificate %s expired on %s; devices whose certificates chain to it are refused", name, c.NotAfter.UTC().Format(time.RFC3339)),
				"add the renewed CA certificate, and remove this one once no device uses it", nil)
		case now.Before(c.NotBefore):
			ps.add(SeverityWarning, s.key, s.origin,
				fmt.Sprintf("certificate %s is not valid before %s", name, c.NotBefore.UTC().Format(time.RFC3339)),
				"check the clock of this host and of the CA", nil)
		}
	}
	return out
}

// checkConsoleShadowed warns when the console chain, unused because local trust is set,
// holds a certificate the local trust store lacks: SEG's documented pitfall.
func checkConsoleShadowed(consolePEM []byte, local []*x509.Certificate, ps *problems) {
	if len(consolePEM) == 0 {
		return
	}
	var quiet problems
	have := map[string]bool{}
	for _, c := range local {
		have[string(c.Raw)] = true
	}
	for _, s := range parsePEMFile(consolePEM, "", KeyConsoleChain, &quiet) {
		if !have[string(s.cert.Raw)] {
			ps.add(SeverityWarning, KeyConsoleChain, "",
				fmt.Sprintf("is not used because %s is set (local trust takes precedence), and its certificate %s is not in the local trust store", KeyPath, describe(s.cert)),
				"add that CA to "+KeyPath+" if devices still use it", nil)
		}
	}
}

// describe names a certificate for an operator: its subject and the start of its SHA-256
// fingerprint, since an old and a renewed CA often share the subject.
func describe(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return fmt.Sprintf("%q (SHA-256 %x…)", c.Subject.String(), sum[:6])
}
