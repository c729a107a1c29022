package krbhint_test

import (
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/krbhint"
)

// TestEveryEntryIsComplete requires each code once, with its RFC name, a
// meaning, a class and a fix at every stage with no placeholder left.
func TestEveryEntryIsComplete(t *testing.T) {
	seen := map[int32]bool{}
	stages := []krbhint.Stage{krbhint.StageASReq, krbhint.StageReferral, krbhint.StageS4U2Self, krbhint.StageS4U2Proxy, krbhint.StageRenew, krbhint.StageRenewTGT}
	for _, e := range krbhint.Entries() {
		if seen[e.Code] {
			t.Errorf("code %d described twice", e.Code)
		}
		seen[e.Code] = true
		if strings.HasPrefix(e.Name(), "KRB_ERROR_") || e.Meaning == "" || e.Class == krbhint.ClassUnknown || e.Fix == "" {
			t.Errorf("%d (%s): incomplete entry %+v", e.Code, e.Name(), e)
		}
		for st := range e.At {
			if !containsStage(stages, st) {
				t.Errorf("%s: fix at unknown stage %q", e.Name(), st)
			}
		}
		for _, st := range stages {
			for _, p := range []krbhint.Params{{}, {Account: "svc_x", SPN: "HTTP/mail.x"}} {
				if f := e.FixAt(st, p); f == "" || strings.Contains(f, "{{") {
					t.Errorf("%s at %s: fix %q", e.Name(), st, f)
				}
			}
		}
	}
	if len(seen) < 15 {
		t.Errorf("only %d codes", len(seen))
	}
}

func containsStage(s []krbhint.Stage, st krbhint.Stage) bool {
	for _, x := range s {
		if x == st {
			return true
		}
	}
	return false
}

// TestFixes checks the words an administrator acts on, per code and stage.
func TestFixes(t *testing.T) {
	p := krbhint.Params{Account: "svc_nodeleg", SPN: "HTTP/other.lab.test"}
	tests := []struct {
		code  int32
		stage krbhint.Stage
		p     krbhint.Params
		want  []string
		not   []string
	}{
		{6, krbhint.StageS4U2Self, p, []string{"altSecurityIdentities", "Kerberos:USERNAME@DOMAIN.NAME", "certificate mapping", "cert.mapping.enabled"}, []string{"service account"}},
		{6, krbhint.StageASReq, p, []string{"service account", "kcd.serviceAccountUserName", "computer account"}, []string{"altSecurityIdentities"}},
		{7, krbhint.StageS4U2Proxy, p, []string{"setspn -S HTTP/other.lab.test", "kcd.targetSPN", "HTTP/{exchangeName}"}, nil},
		{7, krbhint.StageReferral, p, []string{"trust", "kcd.domains"}, nil},
		{7, krbhint.StageS4U2Self, p, []string{"setspn -S HTTP/gateway-host svc_nodeleg"}, nil},
		{12, krbhint.StageRenew, p, []string{"does not renew service tickets", "nothing to fix"}, nil},
		{12, krbhint.StageS4U2Self, p, []string{"disabled", "enable or unlock"}, nil},
		{13, krbhint.StageS4U2Proxy, p, []string{"msDS-AllowedToDelegateTo", "Use any authentication protocol", "samba-tool delegation add-service svc_nodeleg HTTP/other.lab.test",
			"msDS-AllowedToActOnBehalfOfOtherIdentity", "PrincipalsAllowedToDelegateToAccount svc_nodeleg", "add-principal 'EXCHANGE$' svc_nodeleg", "Protected Users", "setspn -Q HTTP/other.lab.test"}, nil},
		{13, krbhint.StageS4U2Proxy, krbhint.Params{}, []string{"add-service SVC HTTP/host"}, nil},
		{13, krbhint.StageASReq, p, []string{"TGT options"}, []string{"msDS-AllowedToDelegateTo"}},
		{14, krbhint.StageASReq, p, []string{"AES", "msDS-SupportedEncryptionTypes", "svc_nodeleg has no AES keys", "reset its password",
			"legacy domain", "segmesh.ticket.allowRc4", "rogue KDC", "segmesh.dnsServer", "kcd.domains[].domainController"}, nil},
		{14, krbhint.StageS4U2Proxy, p, []string{"HTTP/other.lab.test has no AES keys", "msDS-SupportedEncryptionTypes", "segmesh.ticket.allowRc4"}, []string{"svc_nodeleg"}},
		{18, krbhint.StageASReq, p, []string{"service account is disabled"}, nil},
		{18, krbhint.StageS4U2Self, p, []string{"user's account is disabled"}, nil},
		{24, krbhint.StageASReq, p, []string{"password", "kcd.serviceAccountPassword", ".plaintext"}, nil},
		{31, krbhint.StageS4U2Self, p, []string{"krbtgt", "kcd.serviceAccountPassword"}, nil},
		{37, krbhint.StageS4U2Proxy, p, []string{"NTP"}, nil},
		{41, krbhint.StageS4U2Self, p, []string{"checksum type", "HMAC-SHA1-96-AES"}, nil},
		{68, krbhint.StageASReq, p, []string{"uppercase", "DOMAIN-NAME.COM", "kcd.domains"}, nil},
	}
	for _, tt := range tests {
		f := krbhint.FixFor(tt.stage, tt.code, tt.p)
		for _, w := range tt.want {
			if !strings.Contains(f, w) {
				t.Errorf("%d at %s: fix lacks %q: %s", tt.code, tt.stage, w, f)
			}
		}
		for _, w := range tt.not {
			if strings.Contains(f, w) {
				t.Errorf("%d at %s: fix holds %q: %s", tt.code, tt.stage, w, f)
			}
		}
	}
	if krbhint.Fix(krbhint.StageS4U2Self, 3) != "" {
		t.Error("fix for a code the catalogue does not describe")
	}
	nf := krbhint.NotForwardable(p)
	for _, w := range []string{"not forwardable", "Use Kerberos only", "Use any authentication protocol", "for-any-protocol svc_nodeleg", "sensitive and cannot be delegated"} {
		if !strings.Contains(nf, w) {
			t.Errorf("NotForwardable lacks %q: %s", w, nf)
		}
	}
	sk := krbhint.SessionKeyEtype(p)
	for _, w := range []string{"svc_nodeleg", "HTTP/other.lab.test", "msDS-SupportedEncryptionTypes", `HKLM\SYSTEM\CurrentControlSet\Services\KDC`, "segmesh.ticket.allowRc4", "kcd.domains[].domainController"} {
		if !strings.Contains(sk, w) {
			t.Errorf("SessionKeyEtype lacks %q: %s", w, sk)
		}
	}
}

func TestNamesClassesAndDescriptions(t *testing.T) {
	tests := []struct {
		code      int32
		name      string
		class     krbhint.Class
		temporary bool
		describe  string
	}{
		{6, "KDC_ERR_C_PRINCIPAL_UNKNOWN", krbhint.ClassNotFound, false, "KDC_ERR_C_PRINCIPAL_UNKNOWN: user or UPN not in the directory"},
		{13, "KDC_ERR_BADOPTION", krbhint.ClassRefused, false, "KDC_ERR_BADOPTION: SPN not in msDS-AllowedToDelegateTo"},
		{24, "KDC_ERR_PREAUTH_FAILED", krbhint.ClassSetup, false, "KDC_ERR_PREAUTH_FAILED: wrong service account password"},
		{29, "KDC_ERR_SVC_UNAVAILABLE", krbhint.ClassUnavailable, true, "KDC_ERR_SVC_UNAVAILABLE: "},
		{37, "KRB_AP_ERR_SKEW", krbhint.ClassUnavailable, false, "KRB_AP_ERR_SKEW: clock skew"},
		{41, "KRB_AP_ERR_MODIFIED", krbhint.ClassCrypto, false, "KRB_AP_ERR_MODIFIED: "},
		{3, "KDC_ERR_BAD_PVNO", krbhint.ClassUnknown, false, "KDC_ERR_BAD_PVNO"},
		{999, "KRB_ERROR_999", krbhint.ClassUnknown, false, "KRB_ERROR_999"},
	}
	for _, tt := range tests {
		if n := krbhint.Name(tt.code); n != tt.name {
			t.Errorf("Name(%d) = %q, want %q", tt.code, n, tt.name)
		}
		if c := krbhint.ClassOf(tt.code); c != tt.class {
			t.Errorf("ClassOf(%d) = %v, want %v", tt.code, c, tt.class)
		}
		if tm := krbhint.Temporary(tt.code); tm != tt.temporary {
			t.Errorf("Temporary(%d) = %v", tt.code, tm)
		}
		if d := krbhint.Describe(tt.code); !strings.HasPrefix(d, tt.describe) {
			t.Errorf("Describe(%d) = %q, want prefix %q", tt.code, d, tt.describe)
		}
	}
}

// TestNormalStep: only PREAUTH_REQUIRED at the AS exchange is a normal
// step; the same code elsewhere, and any other code, is not.
func TestNormalStep(t *testing.T) {
	for _, tc := range []struct {
		stage krbhint.Stage
		code  int32
		want  bool
	}{
		{krbhint.StageASReq, 25, true},
		{krbhint.StageASReq, 24, false},
		{krbhint.StageS4U2Self, 25, false},
		{krbhint.StageRenewTGT, 25, false},
		{krbhint.StageASReq, 0, false},
	} {
		if got := krbhint.NormalStep(tc.stage, tc.code); got != tc.want {
			t.Errorf("NormalStep(%s, %d) = %v, want %v", tc.stage, tc.code, got, tc.want)
		}
	}
}
