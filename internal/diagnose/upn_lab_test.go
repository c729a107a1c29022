//go:build lab

package diagnose

import (
	"context"
	"testing"

	"github.com/segmesh/segmesh/internal/labenv"
)

// TestLabDiagnoseByUPN: `diagnose --upn` against the lab's directory and KDC:
// alice passes every step after the certificate ones (the lab's mapping is on,
// so the directory is asked), an unknown user fails at S4U2Self with 6.
func TestLabDiagnoseByUPN(t *testing.T) {
	lab := labenv.Up(t)
	cases := []struct {
		upn, step, code string
	}{
		{upn: "alice@lab.test"},
		{upn: "nobody@lab.test", step: StepS4U2Self, code: "KDC_ERR_C_PRINCIPAL_UNKNOWN"},
	}
	for _, tc := range cases {
		t.Run(tc.upn, func(t *testing.T) {
			rep := Run(context.Background(), Options{Config: labConfig(t, lab), UPN: tc.upn})
			if tc.step == "" {
				if !rep.OK || rep.User == nil || rep.User.Source != "upn_given" {
					t.Fatalf("not OK: failed %q, user %+v, steps %+v", rep.FailedStep, rep.User, rep.Steps)
				}
				if rep.Exchange == nil || rep.Exchange.RemoteUser == "" {
					t.Fatalf("Exchange stand-in reported no user: %+v", rep.Exchange)
				}
				return
			}
			if rep.FailedStep != tc.step {
				t.Fatalf("failed at %q, want %q: %+v", rep.FailedStep, tc.step, rep.Steps)
			}
			for _, s := range rep.Steps {
				if s.Name == tc.step && s.Code != tc.code {
					t.Fatalf("code %q, want %q", s.Code, tc.code)
				}
			}
		})
	}
}
