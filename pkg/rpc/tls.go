package rpc

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc/credentials"

	"github.com/segmesh/segmesh/pkg/safefile"
)

// TLSFiles names the PEM files of a process's inter-role identity.
type TLSFiles struct {
	// CertFile and KeyFile are this process's certificate and key.
	CertFile, KeyFile string
	// CAFile holds the CA(s) that issue the other processes' certificates.
	CAFile string
}

func (f TLSFiles) load() (tls.Certificate, *x509.CertPool, error) {
	certPEM, err := readPEMFile(f.CertFile, safefile.CheckReplaceable)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("rpc: segmesh.grpc.certFile: %w", err)
	}
	keyPEM, err := readPEMFile(f.KeyFile, safefile.CheckPrivate)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("rpc: segmesh.grpc.keyFile: %w", err)
	}
	defer clear(keyPEM)  // X509KeyPair keeps the parsed key, not these bytes
	defer clear(certPEM) // nor these, which hold the key too in a combined file
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("rpc: segmesh.grpc.certFile/keyFile: %w", err)
	}
	pem, err := readPEMFile(f.CAFile, safefile.CheckReplaceable)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("rpc: segmesh.grpc.caFile: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, errors.New("rpc: segmesh.grpc.caFile holds no PEM certificate")
	}
	return cert, pool, nil
}

// maxPEMFile bounds a certificate, key or CA file: a chain or a CA bundle
// is kilobytes, and `config check` and every reload read these files.
const maxPEMFile = 4 << 20

// readPEMFile reads a regular file of at most maxPEMFile bytes. It opens
// without blocking and checks the open descriptor, so a FIFO or a device
// (a link to /dev/zero) put in place after a check by path (the reload's
// startFileProblems) fails instead of blocking or reading without end.
// check is made on that descriptor too: the key is refused when another
// local user could read or replace it (safefile.CheckPrivate), the CA and
// the certificate when another user could replace them
// (safefile.CheckReplaceable; a certificate for the same key signed by a
// CA of theirs would load and be refused by every peer). Whoever reads the key, or adds a CA of
// theirs to the CA file, calls the ticket role as a peer it allows and is
// given any user's service tickets.
func readPEMFile(path string, check func(string, os.FileInfo) error) ([]byte, error) {
	b, err := safefile.ReadChecked(path, maxPEMFile, check)
	if e, ok := errors.AsType[*safefile.ExposedError](err); ok && e.HoldsKey {
		// A certificate or CA file holding a key: say so, not only its mode.
		return nil, fmt.Errorf("%s %s (fix: %s): %w", path, e.Explain(path, ""), e.Fix, safefile.ErrExposed)
	} else if ok {
		return nil, fmt.Errorf("%w (fix: %s)", err, e.Fix)
	}
	if errors.Is(err, safefile.ErrTooLarge) {
		return nil, fmt.Errorf("%s is larger than %d bytes, not a PEM certificate or key", path, maxPEMFile)
	}
	return b, err
}

// ServerCredentials returns mTLS credentials that require and verify a
// client certificate issued by the CA.
func ServerCredentials(f TLSFiles) (credentials.TransportCredentials, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}), nil
}

// ClientCredentials returns mTLS credentials presenting this process's
// certificate and verifying the server against the CA.
func ClientCredentials(f TLSFiles) (credentials.TransportCredentials, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS13,
	}), nil
}
