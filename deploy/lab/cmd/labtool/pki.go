package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// cdpBase is where the CRL distribution point serves the CRLs (127.0.0.4).
const cdpBase = "http://cdp.lab.test/"

// oidUPN returns the Microsoft UPN otherName OID (szOID_NT_PRINCIPAL_NAME).
func oidUPN() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3} }

// pki creates the lab's certificates under dir.
type pki struct {
	dir         string
	now         func() time.Time
	pfxPassword string
	log         *slog.Logger
}

// authority is a CA with its key.
type authority struct {
	name string
	cert *x509.Certificate
	key  crypto.Signer
	// parent is the issuing CA, nil for a root.
	parent *authority
}

// caSpec describes one lab CA.
type caSpec struct {
	name, cn, parent string
}

// labCAs lists the lab's CAs in creation order: a parent before its children.
func labCAs() []caSpec {
	return []caSpec{
		{"root", "Segmesh Lab Device Root CA", ""},
		{"inter", "Segmesh Lab Device Issuing CA 1", "root"},
		{"ca2", "Segmesh Lab Device CA 2", ""},
		{"ca3", "Segmesh Lab Untrusted Device CA 3", ""},
		{"server", "Segmesh Lab Server CA", ""},
	}
}

// leafSpec describes one end-entity certificate.
type leafSpec struct {
	kind   string // "users" or "servers"
	name   string
	cn     string
	issuer string
	upn    string // empty: no UPN otherName
	email  string
	dns    []string
	ips    []net.IP
	eku    []x509.ExtKeyUsage
	// notBefore and notAfter are offsets from now.
	notBefore, notAfter time.Duration
	rsa                 bool
	revoked             bool
}

func (p *pki) path(parts ...string) string {
	return filepath.Join(append([]string{p.dir}, parts...)...)
}

func (p *pki) build(users int) error {
	cas := map[string]*authority{}
	for _, s := range labCAs() {
		a, err := p.loadOrCreateCA(s, cas[s.parent])
		if err != nil {
			return err
		}
		cas[s.name] = a
	}
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	server := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	year := 365 * 24 * time.Hour
	dev := func(name, upn, issuer string) leafSpec {
		return leafSpec{kind: "users", name: name, cn: name, issuer: issuer, upn: upn,
			eku: client, notBefore: -time.Hour, notAfter: 2 * year, rsa: true}
	}
	specs := []leafSpec{
		dev("alice", "alice@lab.test", "inter"),
		dev("bob", "", "inter"),
		dev("carol", "carol.ext@LAB.TEST", "inter"),
		dev("mallory", "alice@lab.test", "inter"),
		dev("eve", "eve@lab.test", "inter"),
		dev("dave", "dave@lab.test", "inter"),
		dev("frank", "frank@lab.test", "inter"),
		// xavier's UPN is on the domain's alternative UPN suffix corp.example
		// (uPNSuffixes, added by lab.sh), which is no realm.
		dev("xavier", "xavier@corp.example", "inter"),
		// alice-cloud carries only alice's cloud address as email (no UPN),
		// as Workspace ONE or Intune certificates do; the directory finds
		// alice by it (proxyAddresses).
		dev("alice-cloud", "", "inter"),
		dev("alice-ca2", "alice@lab.test", "ca2"),
		dev("alice-ca3", "alice@lab.test", "ca3"),
		dev("alice-revoked", "alice@lab.test", "inter"),
		dev("alice-expired", "alice@lab.test", "inter"),
		dev("alice-notyet", "alice@lab.test", "inter"),
		dev("alice-wrongeku", "alice@lab.test", "inter"),
	}
	for i := range specs {
		s := &specs[i]
		switch s.name {
		case "bob":
			s.email = "bob.smith@lab.test"
		case "alice", "alice-ca2", "alice-ca3":
			s.email = "alice@lab.test"
		case "alice-cloud":
			s.email = "alice.cloud@example.com"
		case "alice-revoked":
			s.revoked = true
		case "alice-expired":
			s.notBefore, s.notAfter = -2*year, -24*time.Hour
		case "alice-notyet":
			s.notBefore, s.notAfter = 30*24*time.Hour, 2*year
		case "alice-wrongeku":
			s.eku = server
		}
		s.cn = nameToCN(s.name)
	}
	srv := func(name string, dns []string, ips ...string) leafSpec {
		s := leafSpec{kind: "servers", name: name, cn: dns[0], issuer: "server", dns: dns,
			eku:       []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			notBefore: -time.Hour, notAfter: 2 * year}
		for _, ip := range ips {
			s.ips = append(s.ips, net.ParseIP(ip))
		}
		return s
	}
	specs = append(specs,
		srv("dc1", []string{"dc1.lab.test", "ldap.lab.test", "lab.test"}, "127.0.0.2", "127.0.0.6"),
		srv("seg", []string{"seg.lab.test", "localhost"}, "127.0.0.1", "::1"),
		srv("exchange", []string{"exchange.lab.test"}, "127.0.0.3"),
		// SOGo accepts tickets for HTTP/exchange.lab.test: it answers to both names.
		srv("sogo", []string{"sogo.lab.test", "exchange.lab.test"}, "127.0.0.7"),
	)
	for i := 1; i <= users; i++ {
		n := fmt.Sprintf("user%04d", i)
		s := dev(n, n+"@lab.test", "inter")
		s.rsa = false
		specs = append(specs, s)
	}
	if err := p.issueAll(cas, specs); err != nil {
		return err
	}
	return p.issueAllCRLs()
}

// nameToCN keeps a negative certificate's subject the user it names.
func nameToCN(name string) string {
	for i := range name {
		if name[i] == '-' {
			return name[:i]
		}
	}
	return name
}

func (p *pki) issueAll(cas map[string]*authority, specs []leafSpec) error {
	var todo []leafSpec
	for _, s := range specs {
		if _, err := os.Stat(p.path(s.kind, s.name, "cert.pem")); err == nil {
			continue
		}
		todo = append(todo, s)
	}
	p.log.Info("issuing certificates", "count", len(todo))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	work := make(chan leafSpec)
	for range runtime.NumCPU() {
		wg.Go(func() {
			for s := range work {
				serial, err := p.issueLeaf(cas[s.issuer], s)
				if err == nil && s.revoked {
					err = p.appendRevoked(s.issuer, serial)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("issue %s: %w", s.name, err))
					mu.Unlock()
				}
			}
		})
	}
	for _, s := range todo {
		work <- s
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

func newKey(useRSA bool) (crypto.Signer, error) {
	if useRSA {
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	h := sha1.Sum(spki.Key.Bytes)
	return h[:], nil
}

func (p *pki) loadOrCreateCA(s caSpec, parent *authority) (*authority, error) {
	certPath, keyPath := p.path("ca", s.name+".pem"), p.path("ca", s.name+".key")
	if cert, err := readCert(certPath); err == nil {
		key, err := readKey(keyPath)
		if err != nil {
			return nil, err
		}
		return &authority{name: s.name, cert: cert, key: key, parent: parent}, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	key, err := newKey(false)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	now := p.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: s.cn, Organization: []string{"Segmesh Lab"}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          ski,
	}
	issuerCert, issuerKey := tmpl, key
	if parent != nil {
		tmpl.MaxPathLenZero = true
		tmpl.CRLDistributionPoints = []string{cdpBase + parent.name + ".crl"}
		issuerCert, issuerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuerCert, key.Public(), issuerKey)
	if err != nil {
		return nil, fmt.Errorf("create CA %s: %w", s.name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(p.path("ca"), 0o755); err != nil {
		return nil, err
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, err
	}
	if err := writePEM(certPath, 0o644, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	return &authority{name: s.name, cert: cert, key: key, parent: parent}, nil
}

// sanExtension builds a subjectAltName extension. Go's x509 cannot write an
// otherName, so the whole GeneralNames sequence is built here.
func sanExtension(s leafSpec) (pkix.Extension, bool, error) {
	var names []asn1.RawValue
	if s.upn != "" {
		utf8, err := asn1.MarshalWithParams(s.upn, "utf8")
		if err != nil {
			return pkix.Extension{}, false, err
		}
		oid, err := asn1.Marshal(oidUPN())
		if err != nil {
			return pkix.Extension{}, false, err
		}
		value, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: utf8})
		if err != nil {
			return pkix.Extension{}, false, err
		}
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true,
			Bytes: append(oid, value...)})
	}
	if s.email != "" {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, Bytes: []byte(s.email)})
	}
	for _, d := range s.dns {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte(d)})
	}
	for _, ip := range s.ips {
		b := ip.To4()
		if b == nil {
			b = ip.To16()
		}
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 7, Bytes: b})
	}
	if len(names) == 0 {
		return pkix.Extension{}, false, nil
	}
	der, err := asn1.Marshal(names)
	if err != nil {
		return pkix.Extension{}, false, err
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: der}, true, nil
}

func (p *pki) issueLeaf(ca *authority, s leafSpec) (*big.Int, error) {
	if ca == nil {
		return nil, fmt.Errorf("unknown issuer %q", s.issuer)
	}
	key, err := newKey(s.rsa)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := p.now()
	ku := x509.KeyUsageDigitalSignature
	if s.rsa {
		ku |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: s.cn, Organization: []string{"Segmesh Lab"}},
		NotBefore:             now.Add(s.notBefore),
		NotAfter:              now.Add(s.notAfter),
		KeyUsage:              ku,
		ExtKeyUsage:           s.eku,
		BasicConstraintsValid: true,
	}
	if ca.name != "server" {
		tmpl.CRLDistributionPoints = []string{cdpBase + ca.name + ".crl"}
	}
	ext, ok, err := sanExtension(s)
	if err != nil {
		return nil, err
	}
	if ok {
		tmpl.ExtraExtensions = []pkix.Extension{ext}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	dir := p.path(s.kind, s.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := writeKey(filepath.Join(dir, "key.pem"), key); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.der"), der, 0o644); err != nil {
		return nil, err
	}
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	var caCerts []*x509.Certificate
	// The chain holds the leaf and the intermediates, not the root.
	for a := ca; a != nil && a.parent != nil; a = a.parent {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.cert.Raw})...)
		caCerts = append(caCerts, a.cert)
	}
	if err := os.WriteFile(filepath.Join(dir, "chain.pem"), chain, 0o644); err != nil {
		return nil, err
	}
	pfx, err := pkcs12.Modern.Encode(key, cert, caCerts, p.pfxPassword)
	if err != nil {
		return nil, fmt.Errorf("pfx: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pfx"), pfx, 0o600); err != nil {
		return nil, err
	}
	// cert.pem last: its presence marks the directory complete.
	if err := writePEM(filepath.Join(dir, "cert.pem"), 0o644, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	return serial, nil
}

func writePEM(path string, mode os.FileMode, typ string, der []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, 0o600, "PRIVATE KEY", der)
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	return x509.ParseCertificate(blk.Bytes)
}

func readKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return s, nil
}
