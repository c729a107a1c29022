package diagnose

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/certmap"
)

// upnDirectory is a directory that knows users by UPN only (the --upn path
// never maps a certificate).
type upnDirectory map[string]certmap.Mapping // asked UPN (lower case) → user

func (d upnDirectory) Map(context.Context, []byte) (certmap.Mapping, error) {
	return certmap.Mapping{}, &certmap.NotFoundError{}
}

func (d upnDirectory) MapUPN(_ context.Context, upn string) (certmap.Mapping, error) {
	if m, ok := d[strings.ToLower(upn)]; ok {
		return m, nil
	}
	return certmap.Mapping{}, &certmap.NotFoundError{UPN: upn}
}

// TestRunByUPN: `diagnose --upn` for the 3 a.m. call that names a user and
// no certificate file. The certificate steps are skipped with the reason;
// the Kerberos steps give the same verdicts as with a certificate.
func TestRunByUPN(t *testing.T) {
	dir := upnDirectory{
		"alice@test.realm":       {UPN: "alice@test.realm", DN: "CN=alice,CN=Users,DC=test,DC=realm"},
		"alice.alias@test.realm": {UPN: "alice@test.realm", DN: "CN=alice,CN=Users,DC=test,DC=realm", AltSecurityIdentity: true},
	}
	cases := []struct {
		name    string
		upn     string
		mapping bool
		step    string // failing step; "" for a pass
		code    string
		detail  string // in the mapping step's detail on a pass
		wantUPN string
	}{
		{name: "user passes every step", upn: "alice@test.realm", detail: "as given (certificate mapping off", wantUPN: "alice@test.realm"},
		{name: "mapping on: found in the directory", upn: "alice@test.realm", mapping: true, detail: "CN=alice,CN=Users", wantUPN: "alice@test.realm"},
		{name: "mapping on: altSecurityIdentities alias", upn: "alice.alias@test.realm", mapping: true, detail: "altSecurityIdentities Kerberos:alice.alias@test.realm", wantUPN: "alice@test.realm"},
		{name: "sensitive user", upn: "eve@test.realm", step: StepS4U2Proxy, code: "KDC_ERR_BADOPTION"},
		{name: "unknown user", upn: "nobody@test.realm", step: StepS4U2Self, code: "KDC_ERR_C_PRINCIPAL_UNKNOWN"},
		{name: "unknown user, mapping on, says the directory has none", upn: "nobody@test.realm", mapping: true, step: StepS4U2Self, code: "KDC_ERR_C_PRINCIPAL_UNKNOWN"},
		{name: "unknown suffix: asked of the primary realm", upn: "alice@elsewhere.example", step: StepS4U2Self, code: "KDC_ERR_C_PRINCIPAL_UNKNOWN"},
		{name: "not a UPN", upn: "alice", step: StepMapping},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			o := Options{Config: w.cfg, UPN: tc.upn, StepTimeout: 5 * time.Second}
			if tc.mapping {
				w.cfg.Gateway.CertMappingEnabled = true
				w.cfg.Gateway.CertMappingLDAPURL = "ldaps://dc.test.realm:3269"
				w.cfg.Gateway.CertMappingLDAPUser = "CN=svc_seg,CN=Users,DC=test,DC=realm"
				o.Lookup = dir
			}
			rep := Run(context.Background(), o)
			assertNoSecret(t, rep, testSvcPW)
			for _, s := range rep.Steps[:3] { // certificate, trust, revocation
				if s.Status != StatusSkip || s.Detail != noCertificate {
					t.Errorf("%s: %s %q, want skipped: %q", s.Name, s.Status, s.Detail, noCertificate)
				}
			}
			if tc.step == "" {
				if !rep.OK {
					t.Fatalf("failed at %s: %+v", rep.FailedStep, rep.Steps)
				}
				if rep.User == nil || rep.User.UPN != tc.wantUPN || rep.User.Source != "upn_given" {
					t.Fatalf("user %+v, want %s from upn_given", rep.User, tc.wantUPN)
				}
				if !w.sawAuth.Load() {
					t.Error("Exchange got no Negotiate header")
				}
				if d := rep.Steps[3].Detail; !strings.Contains(d, tc.detail) {
					t.Errorf("mapping detail %q lacks %q", d, tc.detail)
				}
				return
			}
			if rep.OK || rep.FailedStep != tc.step {
				t.Fatalf("failed step %q, want %q: %+v", rep.FailedStep, tc.step, rep.Steps)
			}
			for _, s := range rep.Steps {
				if s.Name == tc.step && tc.code != "" && s.Code != tc.code {
					t.Errorf("code %q, want %q (cause %s)", s.Code, tc.code, s.Cause)
				}
			}
		})
	}
}
