// Package benchtls is the mutual TLS the bench proxies serve
// (bench/cmd/bareproxy, bench/cmd/fastproxy): the gateway's server
// certificate, device certificates verified against the CA files it
// trusts, HTTP/1.1 only; and their rule that every address is loopback.
package benchtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// LoopbackHost reports whether hostport is a loopback IP and a port.
func LoopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsLoopback()
}

// ServerConfig returns the TLS configuration of a bench proxy: certFile and
// keyFile (PEM) as its certificate, client certificates required and
// verified against the comma-separated PEM files of clientCAs.
func ServerConfig(certFile, keyFile, clientCAs string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("benchtls: load server certificate: %w", err)
	}
	pool := x509.NewCertPool()
	for _, f := range strings.Split(clientCAs, ",") {
		b, err := os.ReadFile(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("benchtls: read client CA: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("benchtls: client CA %s: %w", f, errNoCertificate)
		}
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}, nil
}

var errNoCertificate = errors.New("no PEM certificate in the file")
