package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
	"time"
)

// crlLifetime is how long an issued CRL is valid; `up` re-issues every CRL.
const crlLifetime = 7 * 24 * time.Hour

// appendRevoked records serial as revoked by the CA named ca. The file has
// one "hexserial unixtime" line per revoked certificate.
func (p *pki) appendRevoked(ca string, serial *big.Int) error {
	f, err := os.OpenFile(p.path("ca", ca+".revoked"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "%x %d\n", serial, p.now().Unix()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (p *pki) readRevoked(ca string) ([]x509.RevocationListEntry, error) {
	b, err := os.ReadFile(p.path("ca", ca+".revoked"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []x509.RevocationListEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		serial, ok := new(big.Int).SetString(f[0], 16)
		if !ok {
			return nil, fmt.Errorf("%s.revoked: bad serial %q", ca, f[0])
		}
		at, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s.revoked: bad time %q", ca, f[1])
		}
		out = append(out, x509.RevocationListEntry{SerialNumber: serial, RevocationTime: time.Unix(at, 0)})
	}
	return out, sc.Err()
}

func (p *pki) nextCRLNumber(ca string) (*big.Int, error) {
	path := p.path("ca", ca+".crlnumber")
	n := int64(0)
	if b, err := os.ReadFile(path); err == nil {
		n, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	n++
	if err := os.WriteFile(path, []byte(strconv.FormatInt(n, 10)+"\n"), 0o644); err != nil {
		return nil, err
	}
	return big.NewInt(n), nil
}

// issueCRL writes crl/<ca>.crl (DER) from the CA's revocation list.
func (p *pki) issueCRL(ca string) error {
	cert, err := readCert(p.path("ca", ca+".pem"))
	if err != nil {
		return err
	}
	key, err := readKey(p.path("ca", ca+".key"))
	if err != nil {
		return err
	}
	entries, err := p.readRevoked(ca)
	if err != nil {
		return err
	}
	num, err := p.nextCRLNumber(ca)
	if err != nil {
		return err
	}
	now := p.now()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    num,
		ThisUpdate:                now.Add(-time.Minute),
		NextUpdate:                now.Add(crlLifetime),
		RevokedCertificateEntries: entries,
	}, cert, key)
	if err != nil {
		return fmt.Errorf("create CRL %s: %w", ca, err)
	}
	if err := os.MkdirAll(p.path("crl"), 0o755); err != nil {
		return err
	}
	tmp := p.path("crl", ca+".crl.tmp")
	if err := os.WriteFile(tmp, der, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p.path("crl", ca+".crl"))
}

func (p *pki) issueAllCRLs() error {
	for _, s := range labCAs() {
		if s.name == "server" {
			continue
		}
		if err := p.issueCRL(s.name); err != nil {
			return err
		}
	}
	return nil
}

// revoke revokes the certificate at certPath and re-issues its issuer's CRL.
func (p *pki) revoke(certPath string) (serial, ca string, err error) {
	cert, err := readCert(certPath)
	if err != nil {
		return "", "", err
	}
	for _, s := range labCAs() {
		caCert, err := readCert(p.path("ca", s.name+".pem"))
		if err != nil {
			return "", "", err
		}
		if cert.CheckSignatureFrom(caCert) != nil {
			continue
		}
		if err := p.appendRevoked(s.name, cert.SerialNumber); err != nil {
			return "", "", err
		}
		if err := p.issueCRL(s.name); err != nil {
			return "", "", err
		}
		return fmt.Sprintf("%x", cert.SerialNumber), s.name, nil
	}
	return "", "", fmt.Errorf("no lab CA issued %s", certPath)
}
