package config

import (
	"slices"
	"testing"
)

// TestRulesIsLoadsValidation: Rules finds on a loaded configuration what
// Load's validation found in its file, and on a configuration changed in
// memory (what a reload gives the roles: live settings from the new file,
// the others at their running values) the rules tying settings together,
// without changing it.
func TestRulesIsLoadsValidation(t *testing.T) {
	c, report, err := parse(t, edit(t, base, map[string]any{"segmesh/edge/exchangeUrls": []any{"http://exchange.lab.test"}}))
	if err != nil {
		t.Fatal(err)
	}
	got := Rules(c)
	if !slices.ContainsFunc(got, func(p Problem) bool { return p.Key == "segmesh.edge.exchangeUrls[0]" && p.Severity == SeverityWarning }) {
		t.Errorf("Rules %+v lacks the plain-http warning Load reported", got)
	}
	for _, p := range got {
		if !slices.ContainsFunc(report.Problems, p.Same) {
			t.Errorf("Rules found %+v, which Load did not report", p)
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		key    string
	}{
		{"KCD on without a target SPN", func(c *Config) { c.KCD.TargetSPN = "" }, "kcd.targetSPN"},
		{"an Exchange URL holding a path the edge forwards", func(c *Config) {
			c.Segmesh.Edge.ExchangeURLs = []string{"https://exchange.lab.test/EWS"}
		}, "segmesh.edge.exchangeUrls"},
		{"ldaps:// on the plain port with the mapping on", func(c *Config) {
			c.Gateway.CertMappingLDAPURL = "ldaps://dc1.lab.test:389"
		}, KeyCertMappingLDAPURL},
		{"a UPN suffix mapped to a realm not in kcd.domains", func(c *Config) {
			c.Segmesh.Identity.UPNSuffixRealms = map[string]string{"other.test": "OTHER.TEST"}
		}, "segmesh.identity.upnSuffixRealms.other.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := *c
			tc.change(&m)
			before := m.Gateway.CertMappingLDAPURL
			ps := Rules(&m)
			if !slices.ContainsFunc(ps, func(p Problem) bool { return p.Key == tc.key && p.Severity == SeverityError }) {
				t.Errorf("Rules %+v, want an error on %s", ps, tc.key)
			}
			if m.Gateway.CertMappingLDAPURL != before {
				t.Errorf("Rules changed the configuration")
			}
			if slices.ContainsFunc(Rules(c), func(p Problem) bool { return p.Key == tc.key && p.Severity == SeverityError }) {
				t.Errorf("the loaded configuration already breaks the rule on %s", tc.key)
			}
		})
	}
}
