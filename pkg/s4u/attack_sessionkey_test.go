package s4u_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"

	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
	"github.com/segmesh/segmesh/pkg/s4u"
)

// TestAttackSessionKeyEtype: a KDC that answers with a session key of an
// etype the request did not offer (RFC 4120 section 3.1.3: the KDC picks
// it from the request's list), RC4 above all, whose key is weak and which
// the gateway turned off, is refused at the exchange that carried it, with
// words naming the etypes and the fix on the DC; with RC4 offered
// (segmesh.ticket.allowRc4) the same KDC serves. Review 1's RC4 work,
// "left": an RC4 session key the KDC picked unasked was accepted.
func TestAttackSessionKeyEtype(t *testing.T) {
	for _, tc := range []struct {
		name       string
		as, tgs    int32 // session key etypes the KDC issues (0: AES256)
		client     func(*s4u.Config)
		wantStage  s4u.Stage // "" means served
		wantEtype  int32
		wantInText []string
	}{
		{name: "RC4 TGT session key, RC4 off", as: etypeID.RC4_HMAC, wantStage: s4u.StageASReq, wantEtype: etypeID.RC4_HMAC,
			wantInText: []string{"23", "18, 17", "msDS-SupportedEncryptionTypes", "segmesh.ticket.allowRc4", "_kerberos._tcp"}},
		{name: "RC4 service ticket session keys, RC4 off", tgs: etypeID.RC4_HMAC, wantStage: s4u.StageS4U2Self, wantEtype: etypeID.RC4_HMAC,
			wantInText: []string{"23", "msDS-SupportedEncryptionTypes"}},
		{name: "AES128 when only AES256 was offered", as: etypeID.AES128_CTS_HMAC_SHA1_96, wantStage: s4u.StageASReq, wantEtype: etypeID.AES128_CTS_HMAC_SHA1_96,
			client: func(c *s4u.Config) { c.Etypes = []int32{etypeID.AES256_CTS_HMAC_SHA1_96} }},
		{name: "RC4 offered by allowRc4", as: etypeID.RC4_HMAC, tgs: etypeID.RC4_HMAC, client: func(c *s4u.Config) { c.AllowRC4 = true }},
		{name: "AES as asked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := labConfig()
			cfg.SessionEtype, cfg.TGSSessionEtype = tc.as, tc.tgs
			k := kdctest.Start(t, cfg)
			c := newClient(t, k, tc.client)
			tk, err := c.ServiceTicket(context.Background(), "bob.smith@lab.test", target)
			c.Wait()
			if tc.wantStage == "" {
				if err != nil {
					t.Fatal(err)
				}
				checkTicket(t, k, tk, "bob.smith@lab.test", realm)
				return
			}
			var se *s4u.SessionKeyError
			if !errors.As(err, &se) || se.Stage != tc.wantStage || se.Got != tc.wantEtype {
				t.Fatalf("ServiceTicket: %v, want a SessionKeyError at %s for etype %d", err, tc.wantStage, tc.wantEtype)
			}
			if s4u.IsTemporary(err) {
				t.Error("a KDC choosing etypes we did not offer is reported as temporary")
			}
			for _, w := range tc.wantInText {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			if tc.wantStage == s4u.StageASReq && len(k.Requests(kdctest.KindS4U2Self)) != 0 {
				t.Error("S4U2Self was sent with a TGT whose session key was refused")
			}
		})
	}
}
