//go:build lab

package suite

import (
	"net/http"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/pkg/config"
)

// TestLabRevocationCertificateCDPs is issue 17's story 4 against the lab's
// PKI and CDP, all-in-one and split: with segmesh.crl.useCertificateCdps and
// no URL list, the CDP each device certificate names is learnt from the
// handshake and fetched before the certificate is accepted, so
// alice-revoked is refused and alice served (on main alice-revoked was
// served: no CRL was ever fetched). Run:
// flock /tmp/segmesh-lab.lock go test -tags lab -run TestLabRevocation -p 1 ./internal/suite/
func TestLabRevocationCertificateCDPs(t *testing.T) {
	lab := labenv.Up(t)
	l := newRevocationLab(t)
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			c := l.config(t, func(c *config.Config) {
				c.ClientCertTrustStorePath = strings.Join(lab.CAPEM, ",")
				c.Gateway.CRLURIs = nil
				c.Segmesh.CRL.UseCertificateCDPs = true
			})
			addr := l.start(t, mode, c)
			device := func(user string) *http.Client { return l.labDevice(t, lab, user) }
			if served(device("alice-revoked"), addr) {
				t.Fatal("alice-revoked served: the CDP her certificate names was not fetched first")
			}
			eventually(t, "alice", device("alice"), addr, true)
			eventually(t, "alice-revoked, CRL in force", device("alice-revoked"), addr, false)
		})
	}
}
