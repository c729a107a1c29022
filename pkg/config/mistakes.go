package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// The mistakes of an admin's first day that Load would otherwise let through
// and `segmesh run` would then refuse or, worse, run with: config init's
// placeholders left in place, an Exchange URL with the ActiveSync path, a
// TLS scheme on a plain port, a list separated by semicolons. Each is
// reported with the fix (issue 27).

// placeholderDomain is the documentation domain `config init` writes where
// the site's names belong (RFC 2606 reserves example domains).
const placeholderDomain = "corp.example"

// placeholderPassword is the password `config init` writes.
const placeholderPassword = "CHANGE-ME"

// forwardedPrefixes returns the path prefixes the edge forwards (and so
// appends from each device request), lower case, without a trailing slash:
// segmesh.edge.paths, else its default. An Exchange URL holding one doubles it.
func forwardedPrefixes(c *Config) []string {
	paths := c.Segmesh.Edge.Paths
	if len(paths) == 0 {
		paths = Default().Segmesh.Edge.Paths
	}
	var out []string
	for _, p := range paths {
		if p = strings.ToLower(strings.TrimRight(p, "/")); p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func validateMistakes(c *Config, r *Report) {
	placeholder := func(key, value string) {
		host := value
		if u, err := url.Parse(value); err == nil && u.Host != "" {
			host = u.Hostname()
		} else if h, _, err := net.SplitHostPort(value); err == nil {
			host = h
		}
		h := strings.ToLower(strings.TrimSuffix(host, "."))
		if h == placeholderDomain || strings.HasSuffix(h, "."+placeholderDomain) {
			r.add(SeverityWarning, key, value, "still holds config init's placeholder name ("+placeholderDomain+" is a documentation domain, not your site)",
				"write your own name here (segmesh config init --domain YOUR.DOMAIN --dc ... --exchange ... writes them for you)")
		}
	}
	for i, d := range c.KCD.Domains {
		placeholder(fmt.Sprintf("kcd.domains[%d].domainController", i), d.DomainController)
	}
	for i, u := range c.Segmesh.Edge.ExchangeURLs {
		placeholder(fmt.Sprintf("segmesh.edge.exchangeUrls[%d]", i), u)
	}
	placeholder(KeyCertMappingLDAPURL, c.Gateway.CertMappingLDAPURL)
	for _, u := range c.Gateway.CRLURIs {
		placeholder(KeyCRLURIs, u)
	}
	if c.KCD.ServiceAccountPassword.Reveal() == placeholderPassword {
		r.add(SeverityWarning, "kcd.serviceAccountPassword", "", "is config init's placeholder password, not the service account's",
			"write the KCD service account's password with the suffix .plaintext")
	}
	if u := c.KCD.ServiceAccountUserName; u != strings.TrimSpace(u) {
		r.add(SeverityWarning, "kcd.serviceAccountUserName", u, "starts or ends with a space, which the KDC takes as part of the account name (it will not find the account)",
			"remove the space: "+fmt.Sprintf("%q", strings.TrimSpace(u)))
	}

	for _, raw := range c.Segmesh.Edge.ExchangeURLs {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			continue // reported by validateSegmesh
		}
		// Anywhere in the path, not only at its end: Outlook's EWS URL
		// (/EWS/Exchange.asmx) doubles the path just the same.
		p := strings.ToLower(strings.TrimRight(u.Path, "/")) + "/"
		for _, pre := range forwardedPrefixes(c) {
			if i := strings.Index(p, pre+"/"); i >= 0 {
				base := u.Scheme + "://" + u.Host
				seg := u.Path[i : i+len(pre)]
				r.add(SeverityError, "segmesh.edge.exchangeUrls", raw,
					fmt.Sprintf("holds %s, which the edge appends from each device request itself (it would ask Exchange for %s%s...)", seg, strings.TrimRight(u.Path, "/"), seg),
					fmt.Sprintf("write the base URL only: %q (the base URL of Exchange, without the virtual directory)", base))
				break
			}
		}
	}

	if lu := c.Gateway.CertMappingLDAPURL; lu != "" && c.MappingHonoured() {
		if u, err := url.Parse(lu); err == nil {
			switch port := u.Port(); {
			case u.Scheme == "ldaps" && (port == "3268" || port == "389"):
				tlsPort := map[string]string{"3268": "3269", "389": "636"}[port]
				r.add(SeverityError, KeyCertMappingLDAPURL, lu, fmt.Sprintf("ldaps:// on port %s, a plain-text port (%s): the TLS handshake will fail", port, map[string]string{"3268": "Global Catalog", "389": "LDAP"}[port]),
					fmt.Sprintf("use ldaps://%s:%s (TLS), or ldap://%s:%s with segmesh.identity.ldapStartTls", u.Hostname(), tlsPort, u.Hostname(), port))
			case u.Scheme == "ldap" && (port == "3269" || port == "636"):
				plainPort := map[string]string{"3269": "3268", "636": "389"}[port]
				r.add(SeverityError, KeyCertMappingLDAPURL, lu, fmt.Sprintf("ldap:// on port %s, a TLS port: the server expects a TLS handshake first", port),
					fmt.Sprintf("use ldaps://%s:%s, or ldap://%s:%s with segmesh.identity.ldapStartTls", u.Hostname(), port, u.Hostname(), plainPort))
			}
		}
	}

	for _, u := range c.Gateway.CRLURIs {
		if strings.Contains(u, ";") {
			r.add(SeverityError, KeyCRLURIs, u, "holds a semicolon: SEG's list is separated by commas, so this is read as one URL",
				"separate the URLs with commas: "+strings.ReplaceAll(u, ";", ", "))
		}
	}
}
