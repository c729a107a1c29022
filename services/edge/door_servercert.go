package edge

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"slices"
	"sync/atomic"
)

// serverCertKeys are the settings that name the edge's own certificate; a
// reload applies them, and a file rewritten in place under the same path
// counts as a change of its setting (segmesh run compares the files'
// content).
var serverCertKeys = []string{
	"segmesh.edge.serverCertFile", "segmesh.edge.serverKeyFile",
	"segmesh.edge.serverPfxFile", "segmesh.edge.serverPfxPasscode",
}

// serverCert is the certificate the edge presents, read by every handshake
// through tls.Config.GetCertificate: a swap applies to the next handshake,
// and connections already established (held Pings among them) keep the
// certificate they were opened with, as TLS has no way to change it.
type serverCert struct {
	p atomic.Pointer[tls.Certificate]
}

func (c *serverCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.p.Load(), nil }

// prepareServerCert loads the certificate next names, from its files as
// they are now. A pair that does not load (a key of another certificate, a
// half-written file, a wrong PFX passcode) is refused with the reason and
// the certificate in use stays. With no certificate configured before and
// after, the self-signed one made at the start stays. The commit swaps it
// in and updates segmesh_edge_server_certificate_not_after.
func (s *Service) prepareServerCert(next *Config) (commit func(), err error) {
	noneBefore := s.cfg.ServerCertFile == "" && s.cfg.ServerKeyFile == "" && s.cfg.ServerPFXFile == ""
	noneAfter := next.ServerCertFile == "" && next.ServerKeyFile == "" && next.ServerPFXFile == ""
	if noneAfter && noneBefore {
		return func() {}, nil
	}
	cert, err := loadServerCertificate(next, s.log, s.now())
	if err != nil {
		return nil, fmt.Errorf("%w (the server certificate in use stays)", err)
	}
	if cur := s.serverCert.p.Load(); cur != nil && slices.EqualFunc(cur.Certificate, cert.Certificate, bytes.Equal) {
		return func() {}, nil // the same certificate: nothing to swap or say
	}
	return func() {
		s.serverCert.p.Store(&cert)
		if cert.Leaf != nil {
			s.metrics.serverCertNotAfter.Store(cert.Leaf.NotAfter.Unix())
			s.log.Info("server certificate changed; new connections get it, open ones keep theirs",
				"subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter)
		}
	}, nil
}
