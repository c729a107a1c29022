package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestAttackDiscoveryPlainLDAP: config check refuses what the identity
// role refuses (certmap.New, TestAttackDiscoveryBindPassword): a mapping URL
// without a host finds its directory in DNS, so without TLS a spoofed answer
// would receive the service account's bind password in clear. A plain URL
// naming its host stays a warning (the admin chose the host).
func TestAttackDiscoveryPlainLDAP(t *testing.T) {
	tests := []struct {
		name string
		sets map[string]any
		want Severity // of the problem on cert.mapping.ldap.url; -1: none
	}{
		{"ldap:///", map[string]any{"customGatewaySettings/cert.mapping.ldap.url": "ldap:///"}, SeverityError},
		{"ldap://:3268 with a base DN", map[string]any{"customGatewaySettings/cert.mapping.ldap.url": "ldap://:3268/DC=lab,DC=test"}, SeverityError},
		{"ldap:/// with StartTLS", map[string]any{"customGatewaySettings/cert.mapping.ldap.url": "ldap:///", "segmesh/identity/ldapStartTls": true}, -1},
		{"ldaps:///", map[string]any{"customGatewaySettings/cert.mapping.ldap.url": "ldaps:///"}, -1},
		{"plain URL with a host", map[string]any{"customGatewaySettings/cert.mapping.ldap.url": "ldap://dc1.lab.test"}, SeverityWarning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r, err := parse(t, edit(t, base, tt.sets))
			got := Severity(-1)
			for _, p := range r.Problems {
				if p.Key == KeyCertMappingLDAPURL {
					got = p.Severity
					if p.Severity == SeverityError && (!strings.Contains(p.Message, "password") || p.Fix == "") {
						t.Errorf("the refusal does not say why or how to fix it: %s", p)
					}
				}
			}
			if got != tt.want {
				t.Fatalf("problem on %s: %v, want %v\n%v", KeyCertMappingLDAPURL, got, tt.want, r.Problems)
			}
			if (err != nil) != (tt.want == SeverityError) {
				t.Errorf("Load error = %v", err)
			}
		})
	}
}

// TestAttackArmorPasswordScope: the FAST armor account's password
// (segmesh.ticket.armorAccountPassword, 839f047) is opened only by a
// process running the ticket role, like the service account's: an
// edge-only or identity-only process never holds it (trust rule 4).
func TestAttackArmorPasswordScope(t *testing.T) {
	doc := edit(t, base, map[string]any{"segmesh/ticket/armorAccountUserName": "SEGGW$", "segmesh/ticket/armorAccountPassword": "Armor-Secret-1"})
	for _, tt := range []struct {
		roles []string
		want  string
	}{
		{[]string{"edge"}, ""},
		{[]string{"identity"}, ""},
		{[]string{"crl"}, ""},
		{[]string{"ticket"}, "Armor-Secret-1"},
		{[]string{"edge", "ticket"}, "Armor-Secret-1"},
	} {
		c, _, err := ParseFor(filepath.Join(t.TempDir(), "config.json"), []byte(doc), tt.roles)
		if err != nil {
			t.Fatalf("%v: %v", tt.roles, err)
		}
		if got := c.Segmesh.Ticket.ArmorAccountPassword.Reveal(); got != tt.want {
			t.Errorf("roles %v hold the armor password %q, want %q", tt.roles, got, tt.want)
		}
	}
}
