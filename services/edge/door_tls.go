package edge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmesh/segmesh/pkg/telemetry"
	"github.com/segmesh/segmesh/pkg/trust"
)

// loadServerCertificate returns the edge's certificate: the PEM pair, the
// PFX (certificate, key and chain), or, when neither is configured, a
// self-signed one made now (devices will not trust it: a warning says so).
func loadServerCertificate(c *Config, log *slog.Logger, now time.Time) (tls.Certificate, error) {
	if cert, ok, err := readServerCertificate(c); ok {
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("edge: server certificate: %w", err)
		}
		return cert, nil
	}
	log.Warn("no server certificate configured: using a self-signed one, which devices will not trust",
		"fix", "set segmesh.edge.serverCertFile and serverKeyFile, or serverPfxFile")
	return selfSigned(now)
}

// selfSigned makes an ECDSA P-256 certificate for localhost and this host.
func selfSigned(now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("edge: self-signed key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("edge: self-signed serial: %w", err)
	}
	names := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		names = append(names, h)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "segmesh edge (self-signed)"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("edge: self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("edge: self-signed certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// trustSource verifies device chains against the current trust store. It is
// read on every handshake, so it must be lock-free (an atomic snapshot).
type trustSource interface {
	// verifyClient checks chain (leaf first, then what the device sent) for
	// client authentication at now.
	verifyClient(chain []*x509.Certificate, now time.Time) (verifiedChain, error)
	// current returns the trust snapshot in use: a pointer compare tells a
	// connection whether the trust changed since it was verified.
	current() *trust.Store
	// acceptableCAs is the pool whose subjects the CertificateRequest lists
	// (nil lists none).
	acceptableCAs() *x509.CertPool
}

// peer is what a connection's handshake established, kept for its requests.
type peer struct {
	// verified reports whether a client certificate was verified.
	verified bool
	// leaf and chainDER are the device's certificate and intermediates.
	leaf     *x509.Certificate
	chainDER [][]byte
	// fingerprint is SHA-256 of the leaf, the identity cache key.
	fingerprint [sha256.Size]byte
	// revChecked is the revocation snapshot version the leaf was last
	// checked against; requests re-check only when a new one arrived.
	revChecked atomic.Uint64
	// chain is what the device presented (leaf first), kept to verify it
	// again when the trust changes (recheckPeer).
	chain []*x509.Certificate
	// validUntil (Unix nanoseconds) is the earliest NotAfter of the verified
	// chain, and trusted the trust snapshot it was verified against; a
	// request re-verifies only when either no longer holds.
	validUntil atomic.Int64
	trusted    atomic.Pointer[trust.Store]
	// gone is the refusal that ended the certificate's validity on this
	// connection; every later request gets it. Nil while valid.
	gone atomic.Pointer[CertificateRefusal]
}

// peers maps a raw connection to its peer record, from accept (ConnContext)
// through the handshake (GetConfigForClient) to close (ConnState).
type peers struct{ m sync.Map }

// add returns c's peer record, new unless a parked Ping handed c back.
func (p *peers) add(c net.Conn) *peer {
	if v, ok := p.m.Load(c); ok {
		return v.(*peer)
	}
	devCert := &peer{}
	p.m.Store(c, devCert)
	return devCert
}

func (p *peers) get(c net.Conn) *peer {
	v, ok := p.m.Load(c)
	if !ok {
		return nil
	}
	return v.(*peer)
}

func (p *peers) remove(c net.Conn) { p.m.Delete(c) }

// keep records devCert as c's again: a parked Ping hands its device connection
// back to the server, whose ConnContext then finds the record (add) and
// the connection keeps what its handshake established.
func (p *peers) keep(c net.Conn, devCert *peer) { p.m.Store(c, devCert) }

// rawConn returns the network connection under c.
func rawConn(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return c
}

// CertificateRefusal is why a device's certificate was refused in the
// handshake, with the evidence for the log.
type CertificateRefusal struct {
	// Reason is a short label: no_certificate, untrusted, revoked,
	// revocation_uncovered, revocation_unknown, ...
	Reason string
	// Subject, Issuer and Serial (hex) describe the leaf; empty without one.
	Subject, Issuer, Serial string
	// Err is the cause.
	Err error
}

// Error describes the refusal.
func (e *CertificateRefusal) Error() string {
	if e.Subject == "" {
		return "edge: client certificate refused: " + e.Err.Error()
	}
	return fmt.Sprintf("edge: client certificate %q (issuer %q, serial %s) refused: %v", e.Subject, e.Issuer, e.Serial, e.Err)
}

// Unwrap returns the cause.
func (e *CertificateRefusal) Unwrap() error { return e.Err }

func refusal(reason string, leaf *x509.Certificate, err error) *CertificateRefusal {
	r := &CertificateRefusal{Reason: reason, Err: err}
	if leaf != nil {
		r.Subject, r.Issuer, r.Serial = leaf.Subject.String(), leaf.Issuer.String(), leaf.SerialNumber.Text(16)
	}
	return r
}

// errNoClientCertificate is the cause when a required certificate is missing.
var errNoClientCertificate = errors.New("the device presented no client certificate (a device whose certificates all come from CAs this edge does not trust sends none: the CertificateRequest names the trusted CAs)")

// baseTLSConfig is the listener's configuration. Each handshake gets a copy
// from GetConfigForClient with its own VerifyConnection bound to the
// connection's peer record and the current trust and revocation snapshots.
func (s *Service) baseTLSConfig() *tls.Config {
	base := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The certificate of the moment: a reload swaps it for the next
		// handshakes (door_servercert.go).
		GetCertificate: s.serverCert.get,
		NextProtos:     []string{"h2", "http/1.1"},
		// RequestClientCert, not RequireAndVerify: the edge verifies in
		// VerifyConnection against the trust snapshot of the moment.
		ClientAuth: tls.RequestClientCert,
		// TLS 1.2 suites: ECDHE with AEAD only (TLS 1.3's are fixed).
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,
		},
	}
	out := base.Clone()
	// Handshakes clone base, or with shared session ticket keys a copy of
	// base holding them (door_tickets.go); without, crypto/tls falls back
	// to out's own automatically rotated keys.
	s.sessions.base = base
	out.GetConfigForClient = func(hello *tls.ClientHelloInfo) (_ *tls.Config, err error) {
		defer s.recoverHandshake("GetConfigForClient", &err)
		devCert := s.peers.get(hello.Conn)
		if devCert == nil {
			devCert = &peer{} // not served by our http.Server (tests dialing the listener); nothing to keep
		}
		c := s.sessions.config().Clone()
		// VerifyConnection runs on resumed handshakes too (the chain comes
		// from the ticket): the certificate is judged again by this edge's
		// trust and CRLs of the moment, whichever edge issued the ticket.
		c.VerifyConnection = func(cs tls.ConnectionState) (err error) {
			defer s.recoverHandshake("VerifyConnection", &err)
			if err := s.verifyConnection(devCert, cs); err != nil {
				return err
			}
			s.sessions.handshake(cs.DidResume)
			return nil
		}
		if !s.cfg.OmitClientCANames {
			// With RequestClientCert crypto/tls only sends ClientCAs' subjects
			// as certificate_authorities (RFC 8446 4.2.4, RFC 5246 7.4.4); it
			// verifies nothing against them: VerifyConnection still decides.
			c.ClientCAs = s.trust.acceptableCAs()
		}
		return c, nil
	}
	return out
}

// verifyConnection checks the device's certificate at the end of every
// handshake, resumed ones included, and records the result on devCert.
func (s *Service) verifyConnection(devCert *peer, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		if s.cfg.RequireClientCert {
			r := refusal("no_certificate", nil, errNoClientCertificate)
			s.refused(r)
			return r
		}
		return nil
	}
	leaf := cs.PeerCertificates[0]
	v, err := s.trust.verifyClient(cs.PeerCertificates, s.now())
	if err != nil {
		r := refusal("untrusted", leaf, err)
		if !s.cfg.RequireClientCert {
			// Neither KCD nor Require Client Certificate: the certificate is
			// not used, so an unverifiable one is ignored, as SEG does.
			s.log.Debug("client certificate ignored", "subject", r.Subject, "cause", err.Error())
			return nil
		}
		s.refused(r)
		return r
	}
	ver, refused := s.checkRevocation(leaf)
	if refused != nil {
		return refused
	}
	devCert.leaf = leaf
	devCert.fingerprint = sha256.Sum256(leaf.Raw)
	devCert.chainDER = devCert.chainDER[:0]
	for _, c := range cs.PeerCertificates[1:] {
		devCert.chainDER = append(devCert.chainDER, c.Raw)
	}
	devCert.revChecked.Store(ver)
	devCert.chain = cs.PeerCertificates
	devCert.validUntil.Store(v.notAfter.UnixNano())
	devCert.trusted.Store(v.store)
	devCert.verified = true
	return nil
}

// checkRevocation checks leaf against the revocation snapshot, at the
// handshake and at a request after a new snapshot (recheck, policy.go). It
// returns the snapshot's version, or the refusal (logged and counted)
// with revocationReason's label.
func (s *Service) checkRevocation(leaf *x509.Certificate) (uint64, *CertificateRefusal) {
	ver, err := s.revocation.check(leaf)
	if err == nil {
		return ver, nil
	}
	r := refusal(revocationReason(err), leaf, err)
	s.refused(r)
	return 0, r
}

// revocationReason is the reason label of a revocation refusal:
// "revoked" (listed, or stale under fail-closed); "revocation_uncovered"
// when the issuer's CRLs are held but are partitions that do not cover the
// certificate (the fix: list its partition's URL); "revocation_unknown"
// otherwise (no CRL of the issuer while one is required, or no snapshot
// from the crl role yet).
func revocationReason(err error) string {
	var ui *UnknownIssuerError
	switch {
	case errors.As(err, new(*RevokedError)):
		return "revoked"
	case errors.As(err, &ui) && ui.Uncovered:
		return "revocation_uncovered"
	}
	return "revocation_unknown"
}

// refused logs and counts a refused certificate.
func (s *Service) refused(r *CertificateRefusal) {
	s.metrics.refused(r.Reason)
	s.refusals.add(refusalRecord{Time: s.now(), Reason: "certificate " + r.Reason, Subject: r.Subject, Issuer: r.Issuer,
		Serial: r.Serial, Status: "handshake refused"})
	s.log.Warn("client certificate refused", "reason", r.Reason, "subject", r.Subject,
		telemetry.AttrIssuer, r.Issuer, telemetry.AttrSerial, r.Serial, "cause", r.Err.Error())
}
