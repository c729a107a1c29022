package s4u_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/patype"

	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
	"github.com/segmesh/segmesh/pkg/s4u"
)

const (
	armorAccount  = "SEGGW$"
	armorPassword = "Gw-Passw0rd!"
)

// armorKDC is labConfig with the computer account SEGGW$ and an
// authentication policy that makes svc_seg's AS exchange need its armour.
func armorKDC(t *testing.T, mod func(*kdctest.Config)) *kdctest.KDC {
	t.Helper()
	cfg := labConfig()
	cfg.ArmorAccount, cfg.ArmorPassword, cfg.RequireArmor = armorAccount, armorPassword, true
	if mod != nil {
		mod(&cfg)
	}
	return kdctest.Start(t, cfg)
}

// TestFAST: with an armor account the service account's AS exchange is
// armoured with that account's TGT (encrypted challenge inside, the KDC's
// cookie echoed) and serves the S4U pair; without it the KDC's policy
// refusal comes back with its NTSTATUS and the armouring hint; a wrong
// armor password or a tampered KrbFastFinished fails with words naming
// them.
func TestFAST(t *testing.T) {
	ctx := context.Background()
	t.Run("armoured", func(t *testing.T) {
		k := armorKDC(t, nil)
		c := newClient(t, k, func(c *s4u.Config) { c.ArmorAccount, c.ArmorPassword = armorAccount, armorPassword })
		tk, err := c.ServiceTicket(ctx, "alice", target)
		if err != nil {
			t.Fatal(err)
		}
		checkTicket(t, k, tk, "alice", realm)
		var armoured []kdctest.Request
		for _, r := range k.Requests(kdctest.KindAS) {
			if r.ArmorClient != "" {
				armoured = append(armoured, r)
			}
		}
		// The first armoured request has no key yet (PREAUTH_REQUIRED,
		// wrapped in FAST); the second proves it by encrypted challenge
		// and echoes the cookie.
		if len(armoured) != 2 || armoured[0].Code != errorcode.KDC_ERR_PREAUTH_REQUIRED || armoured[1].Code != 0 {
			t.Fatalf("armoured AS requests %+v, want PREAUTH_REQUIRED then a TGT", armoured)
		}
		last := armoured[1]
		if last.ArmorClient != armorAccount || !slices.Contains(last.PATypes, patype.PA_ENCRYPTED_CHALLENGE) ||
			!slices.Contains(last.PATypes, patype.PA_FX_COOKIE) || slices.Contains(last.PATypes, patype.PA_ENC_TIMESTAMP) {
			t.Errorf("armoured request: armor client %q, inner padata %v", last.ArmorClient, last.PATypes)
		}
		// A refresh reuses the derived key: one armoured exchange.
		n := len(k.Requests(kdctest.KindAS))
		if _, err := c.TGT(ctx, realm); err != nil {
			t.Fatal(err)
		}
		if got := len(k.Requests(kdctest.KindAS)); got != n {
			t.Errorf("a cached TGT cost %d AS exchanges", got-n)
		}
	})
	t.Run("not armoured", func(t *testing.T) {
		k := armorKDC(t, nil)
		_, err := newClient(t, k, nil).TGT(ctx, realm)
		var ke *s4u.KDCError
		if !errors.As(err, &ke) || ke.Code != errorcode.KDC_ERR_POLICY || ke.NTStatus != s4u.StatusInvalidWorkstation {
			t.Fatalf("err = %v, want KDC_ERR_POLICY with STATUS_INVALID_WORKSTATION", err)
		}
		for _, w := range []string{"AllowedToAuthenticateFrom", "FAST", "armor account"} {
			if !strings.Contains(ke.Hint, w) {
				t.Errorf("hint lacks %q: %s", w, ke.Hint)
			}
		}
	})
	tests := []struct {
		name    string
		kdc     func(*kdctest.Config)
		pw      string
		wantErr []string
	}{
		{"wrong armor password", nil, "wrong", []string{"armor account " + armorAccount, "KDC_ERR_PREAUTH_FAILED"}},
		{"tampered KrbFastFinished", func(c *kdctest.Config) { c.BadFASTFinished = true }, armorPassword, []string{"FAST ticket checksum does not match"}},
		{"unknown armor account", func(c *kdctest.Config) { c.ArmorAccount = "OTHER$" }, armorPassword, []string{"armor account " + armorAccount, "KDC_ERR_C_PRINCIPAL_UNKNOWN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := armorKDC(t, tt.kdc)
			c := newClient(t, k, func(c *s4u.Config) { c.ArmorAccount, c.ArmorPassword = armorAccount, tt.pw })
			_, err := c.TGT(ctx, realm)
			if err == nil {
				t.Fatal("got a TGT")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
}

// TestFASTConfig: an armor account needs a password and a bare name.
func TestFASTConfig(t *testing.T) {
	for _, tt := range []struct{ account, password, want string }{
		{armorAccount, "", "armor account SEGGW$ has no password"},
		{`LAB\SEGGW$`, "pw", "must be a bare sAMAccountName"},
	} {
		_, err := s4u.New(s4u.Config{Realm: realm, Service: "svc_seg", Password: "pw", Exchanger: kdctest.Start(t, labConfig()),
			ArmorAccount: tt.account, ArmorPassword: tt.password})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q/%q: err = %v, want %q", tt.account, tt.password, err, tt.want)
		}
	}
}
