package config

import (
	"fmt"
	"net"
	"strings"
)

// MigrationNotes returns the notes of SEG's "Configuration Updates when
// Migrating from Classic SEG to SEG V2" that apply to c, as warnings: where
// Classic SEG kept a setting somewhere else (IIS, the Microsoft Management
// Console, the computer account) and the file shows signs of the old way.
// The hard rules (DC as FQDN, no computer account) are already errors of
// Load; these are the cases Load lets through. A nil c gives no notes.
func MigrationNotes(c *Config) []Problem {
	if c == nil {
		return nil
	}
	var out []Problem
	add := func(key, value, msg, fix string) {
		out = append(out, Problem{Severity: SeverityWarning, Key: key, Value: value, Message: msg + " (migration from Classic SEG)", Fix: fix})
	}
	if c.KCD.Enabled && !c.RequireClientCertificate {
		add("requireClientCertificate", "false",
			"Require Client Certificate is off; in SEG V2 it is defined in the advanced settings (Email Settings > Advanced), not in IIS as with Classic SEG",
			"set requireClientCertificate to true if client certificates are a security requirement (with KCD on every request needs one anyway)")
	}
	if c.KCD.Enabled && strings.TrimSpace(c.ClientCertTrustStorePath) == "" && c.ClientCertificateChain != "" {
		add("clientCertTrustStorePath", "",
			"only the chain uploaded in the console is trusted; the certificate chain of trust is provided in the configuration and is not stored in the Microsoft Management Console",
			"to trust several issuing CAs (a CA renewal, a move between CAs) list them in clientCertTrustStorePath: PEM files separated by commas, or one password-protected .pfx")
	}
	for _, p := range SplitList(c.ClientCertTrustStorePath) {
		lp := strings.ToLower(p)
		if strings.HasPrefix(lp, "cert:") || strings.Contains(lp, `localmachine\`) || strings.Contains(lp, "currentuser\\") {
			add("clientCertTrustStorePath", p,
				"names a Windows certificate store; SEG V2 does not read the chain of trust from the Microsoft Management Console",
				"export the CA certificates to PEM (or one PFX) files and list those files")
		}
	}
	u := c.KCD.ServiceAccountUserName
	if c.KCD.Enabled && strings.Contains(u, "@") {
		add("kcd.serviceAccountUserName", u,
			"is a user principal name; the service account is named by its account name, its realm being the first domain",
			fmt.Sprintf("write %q", strings.SplitN(u, "@", 2)[0]))
	}
	if c.KCD.Enabled && c.MappingHonoured() && u != "" && c.Gateway.CertMappingLDAPUser != "" {
		cn := firstRDNValue(c.Gateway.CertMappingLDAPUser)
		if cn != "" && !strings.EqualFold(cn, u) && !strings.Contains(strings.ToLower(cn), strings.ToLower(u)) {
			add(KeyCertMappingLDAPUser, c.Gateway.CertMappingLDAPUser,
				fmt.Sprintf("does not look like the DN of the KCD service account %q; SEG uses the same service account credential for the LDAP query (a Service Account must be used, not the computer account)", u),
				"write the service account's distinguished name, for example CN="+u+",CN=Users,DC=corp,DC=example (ignore this if the account's CN differs from its name)")
		}
	}
	domains := map[string]bool{}
	for i, d := range c.KCD.Domains {
		domains[strings.ToUpper(d.Domain)] = true
		host := d.DomainController
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		dom := strings.ToLower(d.Domain)
		if d.Domain != "" && host != "" && net.ParseIP(host) == nil && strings.Contains(host, ".") &&
			!strings.HasSuffix(strings.ToLower(host), "."+dom) {
			add(fmt.Sprintf("kcd.domains[%d].domainController", i), d.DomainController,
				fmt.Sprintf("is not a name under %s; domains and domain controllers are added in pairs, each domain with one of its own domain controllers", dom),
				fmt.Sprintf("write the FQDN of a domain controller of %s, for example DC.%s (ignore this if DNS names it otherwise)", d.Domain, d.Domain))
		}
	}
	if c.KCD.Enabled && len(domains) > 1 {
		add("kcd.domains", fmt.Sprint(len(domains), " domains"),
			"several domains are configured; all domains must have trust with the primary domain (the first, the service account's)",
			"check each domain trusts "+strings.ToUpper(c.KCD.Domains[0].Domain)+" (a user of another domain is served through referral tickets)")
	}
	return out
}

// firstRDNValue returns the value of the first RDN of dn (CN=x,... → x).
func firstRDNValue(dn string) string {
	first, _, _ := strings.Cut(dn, ",")
	_, v, ok := strings.Cut(first, "=")
	if !ok {
		return ""
	}
	return strings.TrimSpace(v)
}
