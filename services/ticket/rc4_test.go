package ticket

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/messages"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
)

// TestAllowRC4: segmesh.ticket.allowRc4 is declared once (config.Keys,
// default off, read by the ticket role) and read from config.json; the
// client Build makes (the ticket role's and diagnose's) offers AES256 and
// AES128 only unless it is true, and then RC4 last.
func TestAllowRC4(t *testing.T) {
	i := slices.IndexFunc(config.Keys(), func(k config.Key) bool { return k.Name == KeyAllowRC4 })
	if i < 0 {
		t.Fatalf("%s is not a declared key", KeyAllowRC4)
	}
	if k := config.Keys()[i]; k.Type != "bool" || k.Default != "" || !slices.Equal(k.Roles, []string{"ticket"}) || k.HasInit {
		t.Fatalf("%s declared as %+v, want a bool off by default, read by the ticket role, not written by config init", KeyAllowRC4, k)
	}
	aes := []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA1_96}
	tests := []struct {
		name   string
		ticket string
		want   []int32
	}{
		{"absent", `{}`, aes},
		{"false", `{"allowRc4": false}`, aes},
		{"true", `{"allowRc4": true}`, append(slices.Clone(aes), etypeID.RC4_HMAC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := `{"requireClientCertificate": false, "kcd": {"enabled": false}, "segmesh": {"ticket": ` + tt.ticket + `}}`
			c, _, err := config.Parse(filepath.Join(t.TempDir(), "config.json"), []byte(data))
			if err != nil {
				t.Fatal(err)
			}
			if got := ConfigFrom(c).AllowRC4; got != (len(tt.want) == 3) {
				t.Fatalf("ConfigFrom: AllowRC4 %v", got)
			}
			k := fakeRealm(t)
			tc := testConfig(k.Addr())
			tc.AllowRC4 = ConfigFrom(c).AllowRC4
			cl, err := tc.Build(BuildOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Wait()
			if _, err := cl.TGT(context.Background(), realm); err != nil {
				t.Fatal(err)
			}
			reqs := k.Requests(kdctest.KindAS)
			if len(reqs) == 0 {
				t.Fatal("no AS-REQ")
			}
			var as messages.ASReq
			if err := as.Unmarshal(reqs[0].Raw); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(as.ReqBody.EType, tt.want) {
				t.Fatalf("AS-REQ etypes %v, want %v", as.ReqBody.EType, tt.want)
			}
		})
	}
}

// TestAllowRC4WithDNSWarns: config check warns when RC4 is allowed and some
// domain's KDCs are found by DNS SRV (a spoofed answer leads to a rogue KDC
// that asks for RC4); not when every domain has a domain controller or RC4
// is off.
func TestAllowRC4WithDNSWarns(t *testing.T) {
	tests := []struct {
		name     string
		allowRC4 bool
		dc       string // the primary domain's domainController
		warn     bool
	}{
		{"rc4 and dns", true, "", true},
		{"rc4 and dc", true, "dc1.lab.test", false},
		{"aes and dns", false, "", false},
		{"aes and dc", false, "dc1.lab.test", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			c.KCD = config.KCD{Enabled: true, TargetSPN: exchSPN, ServiceAccountUserName: "svc_seg",
				Domains: []config.DomainPair{{Domain: realm, DomainController: tt.dc}, {Domain: "CHILD.LAB.TEST", DomainController: "dc3.child.lab.test"}}}
			c.Segmesh.Ticket.AllowRC4 = tt.allowRC4
			var got []config.Problem
			for _, p := range Validate(&c) {
				if p.Key == KeyAllowRC4 {
					got = append(got, p)
				}
			}
			if (len(got) > 0) != tt.warn {
				t.Fatalf("warnings on %s: %+v, want %v", KeyAllowRC4, got, tt.warn)
			}
			if !tt.warn {
				return
			}
			p := got[0]
			if p.Severity != config.SeverityWarning || !strings.Contains(p.Message, realm) || strings.Contains(p.Message, "CHILD") ||
				!strings.Contains(p.Message, "rogue KDC") || !strings.Contains(p.Fix, "domainController") || !strings.Contains(p.Fix, "msDS-SupportedEncryptionTypes") {
				t.Fatalf("warning %+v: want a warning naming %s (not CHILD.LAB.TEST), the rogue KDC, and both fixes", p, realm)
			}
		})
	}
}
