//go:build lab

package s4u_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/s4u"
)

// armoredClient is labClientAs with FAST armour from the lab's armor
// account (seggw$, policy.sh).
func armoredClient(t *testing.T, f labFacts, service string) *s4u.Client {
	t.Helper()
	return labClientAs(t, f, service, func(c *s4u.Config) {
		c.ArmorAccount, c.ArmorPassword = f["LAB_ARMOR_ACCOUNT"], f.secret(t, "LAB_ARMOR_PASSWORD_FILE")
	})
}

// policyLab returns the lab's facts, skipping on a lab without the
// authentication policies of policy.sh (Samba before 4.20). Another tree's
// older lab.sh may have rewritten lab.json without the armor keys: they
// are filled in from the lab's state then.
func policyLab(t *testing.T) labFacts {
	t.Helper()
	f := lab(t)
	if _, err := os.Stat(filepath.Join(f["LAB_DIR"], "samba", ".policies")); err != nil {
		t.Skipf("the lab has no authentication policies (Samba %s; they need 4.20+): %v", sambaSeries(f), err)
	}
	f["LAB_ARMOR_ACCOUNT"] = f.or("LAB_ARMOR_ACCOUNT", "seggw$")
	f["LAB_ARMOR_PASSWORD_FILE"] = f.or("LAB_ARMOR_PASSWORD_FILE", filepath.Join(f["LAB_DIR"], "secrets", "machine"))
	return f
}

// TestLabFAST: svc_armor's policy allows it to authenticate only from
// seggw$ (AllowedToAuthenticateFrom), so its plain AS exchange is refused
// and the one armoured with seggw$'s TGT is served; the TGT then serves
// the S4U pair and Apache accepts the ticket.
func TestLabFAST(t *testing.T) {
	f := policyLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := labClientAs(t, f, "svc_armor").TGT(ctx, f["LAB_REALM"])
	var ke *s4u.KDCError
	if !errors.As(err, &ke) {
		t.Fatalf("plain AS exchange for svc_armor: %v, want a KDC refusal", err)
	}
	var kr *kdc.KRBError
	errors.As(err, &kr)
	t.Logf("plain AS exchange: code %d %s, e-text %q, e-data %x, NTSTATUS %#x", ke.Code, ke.Name, ke.EText, kr.Msg.EData, ke.NTStatus)
	if ke.Code != 12 || ke.Stage != s4u.StageASReq || ke.NTStatus != s4u.StatusInvalidWorkstation {
		t.Errorf("refusal %s at %s with NTSTATUS %#x, want KDC_ERR_POLICY (12) at as-req with STATUS_INVALID_WORKSTATION", ke.Name, ke.Stage, ke.NTStatus)
	}
	for _, w := range []string{"authentication policy", "AllowedToAuthenticateFrom", "FAST", "armor account"} {
		if !strings.Contains(ke.Hint, w) {
			t.Errorf("hint lacks %q: %s", w, ke.Hint)
		}
	}

	c := armoredClient(t, f, "svc_armor")
	tgt, err := c.TGT(ctx, f["LAB_REALM"])
	if err != nil {
		t.Fatalf("armoured AS exchange: %v", err)
	}
	if !tgt.Forwardable() {
		t.Error("armoured TGT is not forwardable")
	}
	tk, err := c.ServiceTicket(ctx, "alice@lab.test", f["LAB_TARGET_SPN"])
	if err != nil {
		t.Fatalf("S4U with the armoured TGT: %v", err)
	}
	if code, body := acceptedByExchange(t, f, tk); code != 200 {
		t.Errorf("Apache answered %d: %s", code, body)
	}
}

// TestLabPolicyAtS4U2Proxy: the policy on exchange$ (AllowedToAuthenticateTo)
// denies svc_denied, which has the same delegation as svc_seg: S4U2Self is
// served (exempt), S4U2Proxy refused with KDC_ERR_POLICY and the hint names
// the target's authentication policy. svc_seg is still served.
func TestLabPolicyAtS4U2Proxy(t *testing.T) {
	f := policyLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := labClientAs(t, f, "svc_denied")
	self, err := c.S4U2Self(ctx, "alice@lab.test")
	if err != nil {
		t.Fatalf("S4U2Self for svc_denied: %v (S4U2Self is exempt from the target's policy)", err)
	}
	_, err = c.S4U2Proxy(ctx, self, f["LAB_TARGET_SPN"])
	var ke *s4u.KDCError
	if !errors.As(err, &ke) {
		t.Fatalf("S4U2Proxy for svc_denied: %v, want KDC_ERR_POLICY", err)
	}
	var kr *kdc.KRBError
	errors.As(err, &kr)
	t.Logf("S4U2Proxy: code %d %s, e-text %q, e-data %x, NTSTATUS %#x", ke.Code, ke.Name, ke.EText, kr.Msg.EData, ke.NTStatus)
	if ke.Code != 12 || ke.Stage != s4u.StageS4U2Proxy || ke.NTStatus != s4u.StatusAuthenticationFirewallFailed {
		t.Errorf("refusal %s at %s, want KDC_ERR_POLICY (12) at s4u2proxy", ke.Name, ke.Stage)
	}
	for _, w := range []string{"authentication policy", "AllowedToAuthenticateTo", "service account"} {
		if !strings.Contains(ke.Hint, w) {
			t.Errorf("hint lacks %q: %s", w, ke.Hint)
		}
	}
	if _, err := labClient(t, f, f["LAB_KDC_DIRECT"]).ServiceTicket(ctx, "alice@lab.test", f["LAB_TARGET_SPN"]); err != nil {
		t.Errorf("svc_seg, allowed by the same policy: %v", err)
	}
}
