//go:build lab

package diagnose

import (
	"context"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/labenv"
)

// TestLabLoginIdentity: segmesh.identity.loginIdentity against Samba, through
// every step to the Exchange stand-in. alice-cloud's certificate carries only
// alice.cloud@example.com (in alice's proxyAddresses): with onPremisesUpn it
// is served as alice; with the default (certificateUpn, SEG's behaviour) it
// is refused at mapping. onPremisesSamAccountName delegates bob (mapped by
// userCertificate, UPN bob.smith@lab.test) as bob@lab.test and xavier (UPN
// xavier@corp.example) as xavier@lab.test: Samba's KDC resolves the implicit
// UPN. Issue 23 item 2.
func TestLabLoginIdentity(t *testing.T) {
	lab := labenv.Up(t)
	cases := []struct {
		name, user, login string
		remote, step      string // remote: the user Exchange saw (enterprise form); step: the failing step
		fixHas            string
	}{
		{name: "cloud email served as alice", user: "alice-cloud", login: "onPremisesUpn", remote: "alice@lab.test"},
		{name: "cloud email refused under certificateUpn", user: "alice-cloud", login: "certificateUpn", step: StepMapping, fixHas: "no user holds the certificate and it has no UPN"},
		{name: "cloud email as alice's sAMAccountName", user: "alice-cloud", login: "onPremisesSamAccountName", remote: "alice@lab.test"},
		{name: "bob by userCertificate as his sAMAccountName", user: "bob", login: "onPremisesSamAccountName", remote: "bob@lab.test"},
		{name: "xavier on the alternative suffix as his sAMAccountName", user: "xavier", login: "onPremisesSamAccountName", remote: "xavier@lab.test"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := labConfig(t, lab)
			cfg.Segmesh.Identity.LoginIdentity = tc.login
			u := lab.User(tc.user)
			rep := Run(context.Background(), Options{Config: cfg, CertPEM: readFile(t, u.Cert), ChainPEM: readFile(t, u.Chain)})
			if tc.step != "" {
				if rep.OK || rep.FailedStep != tc.step {
					t.Fatalf("failed step %q (ok %v), want %s: %+v", rep.FailedStep, rep.OK, tc.step, rep.Steps)
				}
				for _, s := range rep.Steps {
					if s.Name == tc.step && !strings.Contains(s.Fix, tc.fixHas) {
						t.Errorf("fix lacks %q: %s", tc.fixHas, s.Fix)
					}
				}
				return
			}
			if !rep.OK {
				t.Fatalf("failed at %s: %+v", rep.FailedStep, rep.Steps)
			}
			// Samba keeps the enterprise name in the ticket: alice\@lab.test@LAB.TEST.
			if rep.Exchange == nil || !strings.EqualFold(strings.Replace(rep.Exchange.RemoteUser, `\@`, "@", 1), tc.remote+"@"+lab.Realm) {
				t.Fatalf("Exchange saw %+v, want %s…; user %+v", rep.Exchange, tc.remote, rep.User)
			}
		})
	}
}
