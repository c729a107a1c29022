package testpki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"time"
)

// Email adds SAN rfc822Name email addresses; not with UPN.
func Email(addrs ...string) Option { return func(s *spec) { s.emails = append(s.emails, addrs...) } }

// errUPNWithIPOrURI is returned for a UPN with IP or URI names: pkg/upn's
// SAN encoder writes UPNs and DNS names only.
var errUPNWithIPOrURI = errors.New("UPN subject alternative names go with DNS names only, not IP addresses, URIs or email addresses")

// Option shapes a minted certificate.
type Option func(*spec)

// spec is what the options set; zero fields keep the defaults of the kind.
type spec struct {
	at                  time.Time
	notBefore, notAfter time.Time
	serial              *big.Int
	subject             *pkix.Name
	upns, dns, uris     []string
	emails              []string
	ips                 []net.IP
	eku                 []x509.ExtKeyUsage
	ekuSet              bool
	ku                  x509.KeyUsage
	kuSet               bool
	exts                []pkix.Extension
	cdps                []string
	ski                 []byte
}

// At sets the base time the default validity is counted from (time.Now when
// neither the certificate nor its issuer has one). Certificates issued by
// this one inherit it.
func At(t time.Time) Option { return func(s *spec) { s.at = t } }

// NotBefore sets the start of the validity period.
func NotBefore(t time.Time) Option { return func(s *spec) { s.notBefore = t } }

// NotAfter sets the end of the validity period.
func NotAfter(t time.Time) Option { return func(s *spec) { s.notAfter = t } }

// Serial sets the serial number.
func Serial(n *big.Int) Option { return func(s *spec) { s.serial = n } }

// Subject replaces the subject, whose default is only the common name given
// to the minting function.
func Subject(name pkix.Name) Option { return func(s *spec) { s.subject = &name } }

// UPN adds one user principal name otherName per element to the subject
// alternative names, encoded by pkg/upn as AD CS writes them. It combines
// with DNS, not with IP or URI.
func UPN(upns ...string) Option { return func(s *spec) { s.upns = append(s.upns, upns...) } }

// DNS adds DNS names to the subject alternative names.
func DNS(names ...string) Option { return func(s *spec) { s.dns = append(s.dns, names...) } }

// IP adds IP addresses to the subject alternative names.
func IP(ips ...net.IP) Option { return func(s *spec) { s.ips = append(s.ips, ips...) } }

// URI adds URIs (a SPIFFE ID, say) to the subject alternative names.
func URI(uris ...string) Option { return func(s *spec) { s.uris = append(s.uris, uris...) } }

// EKU replaces the extended key usages; EKU() with none leaves the
// extension out.
func EKU(ekus ...x509.ExtKeyUsage) Option {
	return func(s *spec) { s.eku, s.ekuSet = ekus, true }
}

// KeyUsage replaces the key usage.
func KeyUsage(ku x509.KeyUsage) Option { return func(s *spec) { s.ku, s.kuSet = ku, true } }

// Extension adds extensions as they are, after a UPN's SAN extension.
func Extension(exts ...pkix.Extension) Option {
	return func(s *spec) { s.exts = append(s.exts, exts...) }
}

// CDP adds CRL distribution point URLs.
func CDP(urls ...string) Option { return func(s *spec) { s.cdps = append(s.cdps, urls...) } }

// SubjectKeyID sets the subject key identifier; x509 otherwise derives one
// for CAs and leaves it out of other certificates.
func SubjectKeyID(id []byte) Option { return func(s *spec) { s.ski = id } }
