package edge

import (
	"crypto/tls"
	"fmt"
	"strings"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/segmesh/segmesh/pkg/config"
)

// Setting names of the edge's own certificate and of the Exchange CA.
const (
	keyServerCertFile = "segmesh.edge.serverCertFile"
	keyServerKeyFile  = "segmesh.edge.serverKeyFile"
	keyServerPFXFile  = "segmesh.edge.serverPfxFile"
	keyExchangeCAFile = "segmesh.edge.exchangeCaFile"
)

// Fixes of the files above.
const (
	serverCertFix = "name the edge's PEM certificate (the EAS host name's, as SEG used); relative paths start at the install directory"
	serverKeyFix  = "name the PEM private key of " + keyServerCertFile
	serverPFXFix  = "name the PFX holding the edge's certificate and key, with its passcode in segmesh.edge.serverPfxPasscode"
	exchangeCAFix = "name the PEM CA bundle that verifies Exchange's HTTPS certificate, or leave it empty for the system roots"
)

// readServerCertificate reads the edge's certificate from the files c
// names: the PEM certificate and key, or the PFX. Start, every reload and
// Validate (so `config check`) read it here, each file through pkg/config
// (opened without blocking, a regular file only, at most
// config.MaxPEMFile bytes), so the three give the same verdict. The
// certificate through ReadTrustedFile, refused when another local user
// could replace it: with the edge's public key, which the certificate
// shows, they can make one their own CA signs, which loads with the key
// (tls.X509KeyPair compares only the keys) and which every device refuses
// (a denial of service; the expiry on /status then is theirs). The key and
// the PFX through ReadPrivateFile, refused when another local user could
// read or replace them (whoever holds the key poses as the gateway to every
// device). A serverCertFile that holds a private key too (a combined PEM)
// is refused by ReadFile as the key would be (pkg/safefile's ReadChecked).
// The error is a *config.Problem naming the setting; it never holds key material.
// ok is false when c names no certificate file.
func readServerCertificate(c *Config) (cert tls.Certificate, ok bool, err error) {
	switch {
	case c.ServerCertFile != "" || c.ServerKeyFile != "":
		// The key first: its finding (others may read it) is the graver
		// when both files are in a directory others may write.
		keyPEM, err := config.ReadPrivateFile(keyServerKeyFile, c.ServerKeyFile, config.MaxPEMFile, serverKeyFix)
		if err != nil {
			return tls.Certificate{}, true, err
		}
		defer clear(keyPEM)
		certPEM, err := config.ReadTrustedFile(keyServerCertFile, c.ServerCertFile, config.MaxPEMFile, serverCertFix)
		if err != nil {
			return tls.Certificate{}, true, err
		}
		defer clear(certPEM) // a combined file (both settings naming it) holds the key too
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		switch {
		case err != nil && strings.Contains(err.Error(), "does not match"):
			return tls.Certificate{}, true, &config.Problem{Severity: config.SeverityError, Key: keyServerKeyFile, Value: c.ServerKeyFile,
				Message: "does not belong to " + keyServerCertFile + " " + c.ServerCertFile + " (the key is another certificate's)",
				Fix:     "name the key that was made with that certificate, or the certificate that goes with this key"}
		case err != nil:
			return tls.Certificate{}, true, &config.Problem{Severity: config.SeverityError, Key: keyServerCertFile, Value: c.ServerCertFile,
				Message: "does not load with its key: " + err.Error(),
				Fix:     "name a PEM certificate and its PEM private key (a PFX goes in " + keyServerPFXFile + ")"}
		}
		return cert, true, nil
	case c.ServerPFXFile != "":
		data, err := config.ReadPrivateFile(keyServerPFXFile, c.ServerPFXFile, config.MaxPEMFile, serverPFXFix)
		if err != nil {
			return tls.Certificate{}, true, err
		}
		defer clear(data)
		key, leaf, cas, err := pkcs12.DecodeChain(data, c.ServerPFXPasscode)
		if err != nil {
			return tls.Certificate{}, true, &config.Problem{Severity: config.SeverityError, Key: keyServerPFXFile, Value: c.ServerPFXFile,
				Message: fmt.Sprintf("does not decode (check segmesh.edge.serverPfxPasscode): %v", err), Fix: serverPFXFix}
		}
		cert := tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
		for _, ca := range cas {
			cert.Certificate = append(cert.Certificate, ca.Raw)
		}
		return cert, true, nil
	}
	return tls.Certificate{}, false, nil
}

// fileProblems are Validate's findings in the files the edge reads at its
// start and at a reload beyond the trust store and the ticket keys: its
// own certificate and the Exchange CA bundle.
func fileProblems(c *Config) []config.Problem {
	var ps []config.Problem
	// Only one of the PEM pair set, or both a pair and a PFX, is
	// config.Load's finding.
	pair := c.ServerCertFile != "" && c.ServerKeyFile != ""
	pfx := c.ServerPFXFile != "" && c.ServerCertFile == "" && c.ServerKeyFile == ""
	if pair || pfx {
		if _, _, err := readServerCertificate(c); err != nil {
			ps = append(ps, config.ProblemOf(keyServerCertFile, c.ServerCertFile, err, serverCertFix))
		}
	}
	if c.ExchangeCAFile != "" {
		if _, err := ExchangeTLS(c.ExchangeCAFile); err != nil {
			ps = append(ps, config.ProblemOf(keyExchangeCAFile, c.ExchangeCAFile, err, exchangeCAFix))
		}
	}
	return ps
}
