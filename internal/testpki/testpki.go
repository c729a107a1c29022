package testpki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/upn"
)

// Cert is a certificate with its private key. Any Cert can sign others, so a
// test of a bad chain can have a leaf issue a certificate; NewCA and
// Intermediate make the ones that should.
type Cert struct {
	// Cert is the parsed certificate; Cert.Raw is its DER.
	Cert *x509.Certificate
	// Key is the private key of Cert (an *ecdsa.PrivateKey unless LoadCA
	// read another kind).
	Key crypto.Signer
	// Chain holds the CA certificates a peer sends after Cert, issuer first:
	// every intermediate up to, never including, the self-signed root. It is
	// nil for a certificate a root issued and for a root.
	Chain []*x509.Certificate

	// at is the base time of the certificates this one issues.
	at time.Time
}

// kind is the shape of a certificate before options apply.
type kind int

const (
	kindCA     kind = iota // a CA: CertSign and CRLSign
	kindLeaf               // DigitalSignature, no extended key usage
	kindDevice             // a leaf with the clientAuth EKU
	kindServer             // a leaf with the serverAuth EKU
)

// NewCA returns a self-signed root CA named name (its subject common name),
// with the CertSign and CRLSign key usages.
func NewCA(tb testing.TB, name string, opts ...Option) *Cert {
	tb.Helper()
	return mint(tb, nil, kindCA, name, opts)
}

// SelfSigned returns a self-signed device certificate named name: a Device
// that signs itself, as tests of code that reads a certificate without
// verifying its chain use.
func SelfSigned(tb testing.TB, name string, opts ...Option) *Cert {
	tb.Helper()
	return mint(tb, nil, kindDevice, name, opts)
}

// Intermediate returns a CA named name issued by c.
func (c *Cert) Intermediate(tb testing.TB, name string, opts ...Option) *Cert {
	tb.Helper()
	return mint(tb, c, kindCA, name, opts)
}

// Issue returns a certificate named name issued by c, with the
// DigitalSignature key usage and no extended key usage: the options shape
// the rest.
func (c *Cert) Issue(tb testing.TB, name string, opts ...Option) *Cert {
	tb.Helper()
	return mint(tb, c, kindLeaf, name, opts)
}

// Device returns a device (TLS client) certificate named name issued by c:
// Issue with the clientAuth extended key usage. Give it a UPN with the UPN
// option.
func (c *Cert) Device(tb testing.TB, name string, opts ...Option) *Cert {
	tb.Helper()
	return mint(tb, c, kindDevice, name, opts)
}

// Server returns a TLS server certificate issued by c for hosts, each an IP
// address or a DNS name, named after the first: Issue with the serverAuth
// extended key usage.
func (c *Cert) Server(tb testing.TB, hosts []string, opts ...Option) *Cert {
	tb.Helper()
	if len(hosts) == 0 {
		tb.Fatal("testpki: server certificate without hosts")
	}
	var hostOpts []Option
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			hostOpts = append(hostOpts, IP(ip))
		} else {
			hostOpts = append(hostOpts, DNS(h))
		}
	}
	return mint(tb, c, kindServer, hosts[0], append(hostOpts, opts...))
}

// mint builds the template for k, applies opts, and signs it with parent's
// key (with its own when parent is nil).
func mint(tb testing.TB, parent *Cert, k kind, name string, opts []Option) *Cert {
	tb.Helper()
	s := spec{}
	if parent != nil {
		s.at = parent.at
	}
	for _, o := range opts {
		o(&s)
	}
	if s.at.IsZero() {
		s.at = time.Now()
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("testpki: generate key: %v", err)
	}
	tmpl, err := s.template(k, name)
	if err != nil {
		tb.Fatalf("testpki: %s: %v", name, err)
	}
	signer, signerKey := tmpl, crypto.Signer(key)
	if parent != nil {
		signer, signerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signerKey)
	if err != nil {
		tb.Fatalf("testpki: create certificate %s: %v", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("testpki: parse certificate %s: %v", name, err)
	}
	out := &Cert{Cert: cert, Key: key, at: s.at}
	if parent != nil {
		out.Chain = parent.sent()
	}
	return out
}

// sent returns the certificates a peer presents for a certificate c issued:
// c and its chain, or nothing when c is a self-signed root.
func (c *Cert) sent() []*x509.Certificate {
	if isRoot(c.Cert) {
		return nil
	}
	return append([]*x509.Certificate{c.Cert}, c.Chain...)
}

// isRoot reports whether cert is self-signed.
func isRoot(cert *x509.Certificate) bool {
	return bytes.Equal(cert.RawIssuer, cert.RawSubject) && cert.CheckSignatureFrom(cert) == nil
}

// template returns the certificate template of a k named name.
func (s *spec) template(k kind, name string) (*x509.Certificate, error) {
	serial := s.serial
	if serial == nil {
		r, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
		if err != nil {
			return nil, err
		}
		serial = r.Add(r, big.NewInt(1))
	}
	subject := pkix.Name{CommonName: name}
	if s.subject != nil {
		subject = *s.subject
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             s.at.Add(-time.Hour),
		NotAfter:              s.at.AddDate(1, 0, 0),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		DNSNames:              s.dns,
		IPAddresses:           s.ips,
		EmailAddresses:        s.emails,
		ExtraExtensions:       s.exts,
		CRLDistributionPoints: s.cdps,
		SubjectKeyId:          s.ski,
	}
	switch k {
	case kindCA:
		tmpl.IsCA = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		tmpl.NotAfter = s.at.AddDate(10, 0, 0)
	case kindDevice:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case kindServer:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	if s.ekuSet {
		tmpl.ExtKeyUsage = s.eku
	}
	if s.kuSet {
		tmpl.KeyUsage = s.ku
	}
	if !s.notBefore.IsZero() {
		tmpl.NotBefore = s.notBefore
	}
	if !s.notAfter.IsZero() {
		tmpl.NotAfter = s.notAfter
	}
	for _, u := range s.uris {
		parsed, err := url.Parse(u)
		if err != nil {
			return nil, err
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	if len(s.upns) > 0 {
		// One SAN extension holds the UPN otherNames and the DNS names;
		// x509 would otherwise add a second one for DNSNames.
		if len(s.ips) > 0 || len(s.uris) > 0 || len(s.emails) > 0 {
			return nil, errUPNWithIPOrURI
		}
		ext, err := upn.SANExtension(s.upns, s.dns...)
		if err != nil {
			return nil, err
		}
		tmpl.DNSNames = nil
		tmpl.ExtraExtensions = append([]pkix.Extension{ext}, tmpl.ExtraExtensions...)
	}
	return tmpl, nil
}

// TLS returns c as a tls.Certificate: c, then its Chain, with its key.
func (c *Cert) TLS() tls.Certificate {
	out := tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
	for _, ca := range c.Chain {
		out.Certificate = append(out.Certificate, ca.Raw)
	}
	return out
}
