package config

import (
	"strings"
	"testing"
)

func TestMigrationNotes(t *testing.T) {
	base := func() *Config {
		c := Default()
		c.RequireClientCertificate = true
		c.ClientCertTrustStorePath = "config/ssl-certs/CA01.pem"
		c.KCD = KCD{Enabled: true, TargetSPN: "HTTP/mail.corp.example", ServiceAccountUserName: "svc_seg",
			Domains: []DomainPair{{Domain: "CORP.EXAMPLE", DomainController: "dc1.corp.example"}}}
		return &c
	}
	cases := []struct {
		name string
		edit func(c *Config)
		key  string // "" means no note
		has  string
	}{
		{name: "clean", edit: func(*Config) {}},
		{name: "require client certificate off", edit: func(c *Config) { c.RequireClientCertificate = false },
			key: "requireClientCertificate", has: "advanced settings"},
		{name: "console chain only", edit: func(c *Config) { c.ClientCertTrustStorePath, c.ClientCertificateChain = "", "chain.pem" },
			key: "clientCertTrustStorePath", has: "not stored in the Microsoft Management Console"},
		{name: "windows store path", edit: func(c *Config) { c.ClientCertTrustStorePath = `Cert:\LocalMachine\Root.pem` },
			key: "clientCertTrustStorePath", has: "Microsoft Management Console"},
		{name: "service account as UPN", edit: func(c *Config) { c.KCD.ServiceAccountUserName = "svc_seg@corp.example" },
			key: "kcd.serviceAccountUserName", has: `"svc_seg"`},
		{name: "LDAP user another account", edit: func(c *Config) {
			c.Gateway.CertMappingEnabled, c.Gateway.CertMappingLDAPUser = true, "CN=EXCH01,CN=Computers,DC=corp,DC=example"
		}, key: KeyCertMappingLDAPUser, has: "Service Account must be used"},
		{name: "LDAP user is the service account", edit: func(c *Config) {
			c.Gateway.CertMappingEnabled, c.Gateway.CertMappingLDAPUser = true, "CN=svc_seg,CN=Users,DC=corp,DC=example"
		}},
		{name: "DC of another domain", edit: func(c *Config) { c.KCD.Domains[0].DomainController = "dc1.other.example" },
			key: "kcd.domains[0].domainController", has: "in pairs"},
		{name: "DC with port under the domain", edit: func(c *Config) { c.KCD.Domains[0].DomainController = "dc1.corp.example:88" }},
		{name: "two domains", edit: func(c *Config) {
			c.KCD.Domains = append(c.KCD.Domains, DomainPair{Domain: "EU.CORP.EXAMPLE", DomainController: "dc1.eu.corp.example"})
		}, key: "kcd.domains", has: "trust with the primary domain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(c)
			notes := MigrationNotes(c)
			if tc.key == "" {
				if len(notes) != 0 {
					t.Fatalf("unexpected notes: %v", notes)
				}
				return
			}
			if len(notes) != 1 {
				t.Fatalf("got %d notes, want 1: %v", len(notes), notes)
			}
			n := notes[0]
			if n.Key != tc.key || n.Severity != SeverityWarning || !strings.Contains(n.String(), tc.has) || !strings.Contains(n.Message, "Classic SEG") {
				t.Fatalf("note %s; want key %s with %q", n, tc.key, tc.has)
			}
		})
	}
	if MigrationNotes(nil) != nil {
		t.Fatal("nil config gives notes")
	}
}
