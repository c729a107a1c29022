package diagnose

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/certmap"
	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
)

// TestAttackPanicOnAKDCReply (rvpanic3): a KDC whose reply's encrypted
// part carries an empty flags BIT STRING (RFC 4120 wants 32 bits or more;
// a broken or hostile KDC) made gokrb5's types.IsFlagSet index past its
// end in s4u.Ticket.Forwardable: the TGT step (pkg/s4u's AS exchange) and
// the S4U2Self step (its detail) ran it without a recover, and on main this
// test crashed the test binary (index out of range [0] with length 0). The
// empty flags are read as no flag set: every step still reports, the
// tickets as not forwardable.
func TestAttackPanicOnAKDCReply(t *testing.T) {
	tests := []struct {
		name string
		kind kdctest.Kind
		step string
		want string // in that step's detail
	}{
		{"the AS reply (the service account's TGT)", kdctest.KindAS, StepTGT, "krbtgt/"},
		{"the S4U2Self reply", kdctest.KindS4U2Self, StepS4U2Self, "NOT forwardable"},
		{"the S4U2Proxy reply", kdctest.KindS4U2Proxy, StepS4U2Proxy, "ticket to"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, func(c *kdctest.Config) { c.EmptyReplyFlags = map[kdctest.Kind]bool{tc.kind: true} })
			rep := Run(context.Background(), Options{Config: w.cfg, CertPEM: w.leaf(t, "alice@test.realm", 42, w.ca), StepTimeout: 5 * time.Second})
			if len(rep.Steps) != len(Steps()) {
				t.Fatalf("%d steps reported, want %d", len(rep.Steps), len(Steps()))
			}
			for _, s := range rep.Steps {
				if s.Name == tc.step && (s.Status != StatusPass || !strings.Contains(s.Detail, tc.want)) {
					t.Fatalf("step %s: %s %q (%s), want pass with %q", s.Name, s.Status, s.Detail, s.Cause, tc.want)
				}
			}
		})
	}
}

// panickingDirectory is a directory lookup that panics, as a client or
// parser meeting a directory's reply it did not expect would.
type panickingDirectory struct{}

func (panickingDirectory) Map(context.Context, []byte) (certmap.Mapping, error) {
	panic("runtime error: index out of range [3] with length 3 " + strings.Repeat("x", 4096))
}

func (panickingDirectory) MapUPN(context.Context, string) (certmap.Mapping, error) {
	panic("runtime error: index out of range [3] with length 3")
}

// TestAttackPanicInAStep (rvpanic3): only the revocation step's CRL work
// had a recover (checkCRL); a panic in any other step (the directory's
// reply in mapping, a KDC's in the Kerberos steps, Exchange's) ended
// `segmesh diagnose` with a stack and no report: on main this test
// crashed the test binary. Now it is that step's failure, code "panic",
// with the value cut to telemetry.MaxPanicValue bytes, and the steps after
// it are skipped as after any failure.
func TestAttackPanicInAStep(t *testing.T) {
	for _, byUPN := range []bool{false, true} {
		t.Run(fmt.Sprintf("byUPN=%v", byUPN), func(t *testing.T) {
			w := newWorld(t)
			w.cfg.Gateway.CertMappingEnabled = true
			w.cfg.Gateway.CertMappingLDAPURL = "ldaps://dc.test.realm:3269"
			w.cfg.Gateway.CertMappingLDAPUser = "CN=svc_seg,CN=Users,DC=test,DC=realm"
			o := Options{Config: w.cfg, StepTimeout: 5 * time.Second, Lookup: panickingDirectory{}}
			if byUPN {
				o.UPN = "alice@test.realm"
			} else {
				o.CertPEM = w.leaf(t, "alice@test.realm", 42, w.ca)
			}
			rep := Run(context.Background(), o)
			if rep.OK || rep.FailedStep != StepMapping || len(rep.Steps) != len(Steps()) {
				t.Fatalf("failed step %q with %d steps, want %s of %d: %+v", rep.FailedStep, len(rep.Steps), StepMapping, len(Steps()), rep.Steps)
			}
			s := rep.Steps[3]
			if s.Code != "panic" || !strings.Contains(s.Cause, "index out of range") || !strings.Contains(s.Fix, "segmesh's maintainers") || len(s.Cause) > 1024 {
				t.Fatalf("mapping step: code %q cause %q fix %q: want code panic, the value cut, the maintainers", s.Code, s.Cause, s.Fix)
			}
			if last := rep.Steps[len(rep.Steps)-1]; last.Status != StatusSkip {
				t.Fatalf("step %s after the panic: %s, want skipped", last.Name, last.Status)
			}
		})
	}
}
