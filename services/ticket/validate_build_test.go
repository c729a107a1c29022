package ticket

import (
	"slices"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/secret"
)

// TestValidateRefusesWhatNewRefuses: what New refuses when it builds the
// S4U client (Build: s4u.New, kdc.New) from the configuration alone,
// Validate refuses too, on the setting at fault, so `segmesh config check`
// no longer passes a file the start then stops on. Before buildProblems
// Validate passed the first two.
func TestValidateRefusesWhatNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*config.Config)
		key  string // "": valid
		also string // a second setting refused with it
	}{
		{"the service account as a UPN", func(c *config.Config) { c.KCD.ServiceAccountUserName = "svc_seg@corp.example" }, "kcd.serviceAccountUserName", ""},
		{"the armor account as a UPN", func(c *config.Config) {
			c.Segmesh.Ticket.ArmorAccountUserName, c.Segmesh.Ticket.ArmorAccountPassword = "SEGGW$@corp.example", secret.New("pw")
		}, "segmesh.ticket.armorAccountUserName", ""},
		// Both accounts written with their domain: each setting is named
		// (s4u.New's refusal holds a problem.SettingError per setting). On
		// main the first text match filed the whole refusal under the
		// armor account and the service account was not named.
		{"both accounts with a domain", func(c *config.Config) {
			c.KCD.ServiceAccountUserName = `CORP\svc_seg`
			c.Segmesh.Ticket.ArmorAccountUserName, c.Segmesh.Ticket.ArmorAccountPassword = "SEGGW$@corp.example", secret.New("pw")
		}, "kcd.serviceAccountUserName", "segmesh.ticket.armorAccountUserName"},
		{"valid", func(*config.Config) {}, "", ""},
		{"valid, an armor account", func(c *config.Config) {
			c.Segmesh.Ticket.ArmorAccountUserName, c.Segmesh.Ticket.ArmorAccountPassword = "SEGGW$", secret.New("pw")
		}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			c.KCD.Enabled, c.KCD.TargetSPN = true, "HTTP/mail.corp.example"
			c.KCD.ServiceAccountUserName, c.KCD.ServiceAccountPassword = "svc_seg", secret.New("pw")
			c.KCD.Domains = []config.DomainPair{{Domain: "CORP.EXAMPLE", DomainController: "dc1.corp.example"}}
			tc.edit(&c)
			_, newErr := New(role.Deps{Config: &c})
			ps := Validate(&c)
			i := slices.IndexFunc(ps, func(p config.Problem) bool { return p.Severity == config.SeverityError })
			if tc.key == "" {
				if newErr != nil || i >= 0 {
					t.Fatalf("New: %v, Validate: %v; want both to accept", newErr, ps)
				}
				return
			}
			if newErr == nil {
				t.Fatal("New accepted it")
			}
			if i < 0 || ps[i].Key != tc.key || ps[i].Fix == "" || !strings.Contains(ps[i].Message, "start would stop") {
				t.Fatalf("Validate = %v; want an error on %s with a fix (New: %v)", ps, tc.key, newErr)
			}
			if tc.also != "" && !slices.ContainsFunc(ps, func(p config.Problem) bool {
				return p.Severity == config.SeverityError && p.Key == tc.also && p.Fix != ""
			}) {
				t.Fatalf("Validate = %v; want an error on %s too (New: %v)", ps, tc.also, newErr)
			}
		})
	}
}
