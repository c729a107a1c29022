package diagnose

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/services/identity"
)

const (
	parityBindDN = "CN=svc_seg,CN=Users,DC=test,DC=realm"
	parityBase   = "DC=test,DC=realm"
)

// directoryFor starts a fake AD that accepts StartTLS and refuses a plain
// bind (as AD and Samba do), holds alice without any certificate binding,
// and points w's mapping settings at it.
func directoryFor(t *testing.T, w *world) *ldaptest.Server {
	t.Helper()
	ca := testpki.NewCA(t, "LDAP CA")
	srv := ldaptest.New(t, ldaptest.Options{
		TLS:        &tls.Config{Certificates: []tls.Certificate{ca.Server(t, []string{"127.0.0.1"}).TLS()}, MinVersion: tls.VersionTLS12},
		RequireTLS: true,
		RootDSE:    map[string]string{"defaultNamingContext": parityBase, "rootDomainNamingContext": parityBase},
	})
	srv.AddBind(parityBindDN, testSvcPW)
	srv.Add(ldaptest.User("CN=Alice,CN=Users,"+parityBase, "alice", "alice@test.realm"))
	caFile := filepath.Join(w.cfg.BaseDir, "ldap-ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	w.cfg.Gateway.CertMappingEnabled = true
	w.cfg.Gateway.CertMappingLDAPURL = srv.URL("")
	w.cfg.Gateway.CertMappingLDAPUser = parityBindDN
	w.cfg.Segmesh.Identity.LDAPCAFile = caFile
	w.cfg.Segmesh.Identity.LDAPStartTLS = true
	return srv
}

// roleVerdict maps the certificate with the identity role built from the
// same configuration, as `segmesh run` would.
func roleVerdict(t *testing.T, cfg *config.Config, der []byte) error {
	t.Helper()
	svc, err := identity.New(role.Deps{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := svc.Start(ctx); err != nil {
		return err
	}
	t.Cleanup(func() { _ = svc.Stop(ctx) })
	_, err = svc.Map(ctx, der)
	return err
}

// TestMappingStepReachesTheIdentityRolesVerdict runs the mapping step and
// the identity role on the same configuration: StartTLS (diagnose bound in
// plain text where the role used StartTLS), strong mapping and the fallback
// while the directory is down (diagnose ignored both).
func TestMappingStepReachesTheIdentityRolesVerdict(t *testing.T) {
	cases := []struct {
		name  string
		setup func(w *world, srv *ldaptest.Server)
		pass  bool
	}{
		{name: "StartTLS on ldap://", pass: true},
		{name: "strong mapping refuses a SAN UPN the directory does not bind", setup: func(w *world, _ *ldaptest.Server) {
			w.cfg.Segmesh.Identity.StrongMapping = true
		}},
		{name: "fallback while the directory is down", setup: func(w *world, srv *ldaptest.Server) {
			w.cfg.Segmesh.Identity.FallbackWhenUnavailable = true
			srv.Stop()
		}, pass: true},
		{name: "no fallback while the directory is down", setup: func(_ *world, srv *ldaptest.Server) { srv.Stop() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			srv := directoryFor(t, w)
			if tc.setup != nil {
				tc.setup(w, srv)
			}
			pemCert := w.leaf(t, "alice@test.realm", 42, w.ca)
			rep := Run(context.Background(), Options{Config: w.cfg, CertPEM: pemCert, StepTimeout: 5 * time.Second})
			var mapping StepResult
			for _, s := range rep.Steps {
				if s.Name == StepMapping {
					mapping = s
				}
			}
			leaf, err := parseCerts(pemCert)
			if err != nil {
				t.Fatal(err)
			}
			roleErr := roleVerdict(t, w.cfg, leaf[0].Raw)
			if rolePass := roleErr == nil; rolePass != tc.pass {
				t.Fatalf("identity role: err %v, want pass=%v", roleErr, tc.pass)
			}
			if got := mapping.Status == StatusPass; got != tc.pass {
				t.Fatalf("diagnose mapping step %s (%s %s), the identity role says pass=%v (err %v)", mapping.Status, mapping.Detail, mapping.Cause, tc.pass, roleErr)
			}
		})
	}
}
