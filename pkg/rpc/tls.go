package rpc

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc/credentials"
)

// TLSFiles names the PEM files of a process's inter-role identity.
type TLSFiles struct {
	// CertFile and KeyFile are this process's certificate and key.
	CertFile, KeyFile string
	// CAFile holds the CA(s) that issue the other processes' certificates.
	CAFile string
}

func (f TLSFiles) load() (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("rpc: segmesh.grpc.certFile/keyFile: %w", err)
	}
	pem, err := os.ReadFile(f.CAFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("rpc: segmesh.grpc.caFile: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, errors.New("rpc: segmesh.grpc.caFile holds no PEM certificate")
	}
	return cert, pool, nil
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
