package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/certmap"
	"github.com/segmesh/segmesh/pkg/config"
)

// TestAttackConfigInitFailsClosed: the file `config init` writes (now
// generated from the declarations, ce7537b) starts a site on the safe side
// of every switch that decides who gets in: certificates required, KCD on,
// revocation checked and a failed first CRL download fatal, no fallback to
// the SAN UPN when the directory is down, the login identity SEG's, RC4
// off, the admin port and the role-to-role port not reachable from the
// network, no profiles or personal data on the admin port, and the mapping
// URL over TLS. Attacker review; held. (failClosedOnStale and
// strongMapping stay off by default, as in SEG: see the review report.)
func TestAttackConfigInitFailsClosed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	if code, out, errOut := run(t, "config", "init", p); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	c, _, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := certmap.ParseURL(c.Gateway.CertMappingLDAPURL)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what string
		ok   bool
	}{
		{"requireClientCertificate on", c.RequireClientCertificate},
		{"kcd.enabled on", c.KCD.Enabled},
		{"revocation checked", c.RevocationHonoured()},
		{"a failed CRL download at start is fatal", c.Gateway.FailHardOnCRLDownload},
		{"no SAN fallback with the directory down", !c.Segmesh.Identity.FallbackWhenUnavailable},
		{"SEG's login identity", c.Segmesh.Identity.LoginIdentity == string(certmap.LoginCertificateUPN)},
		{"RC4 off", !c.Segmesh.Ticket.AllowRC4},
		{"admin port on loopback", strings.HasPrefix(c.Segmesh.Admin.Listen, "127.0.0.1:")},
		{"no role-to-role port", c.Segmesh.GRPC.Listen == ""},
		{"no pprof", !c.Segmesh.Admin.Pprof},
		{"no personal data on /status", !c.Segmesh.Admin.ShowPersonalData},
		{"mapping URL over TLS", ep.TLS},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("config init: %s is not the default written", ch.what)
		}
	}
}
