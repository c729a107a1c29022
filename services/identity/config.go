package identity

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/segmesh/segmesh/pkg/certmap"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/dnssrv"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/secret"
	"github.com/segmesh/segmesh/pkg/upn"
)

// Config is the identity role's section of the configuration.
type Config struct {
	// KCDEnabled is kcd.enabled. With it off the role maps nobody: no ticket
	// would be issued for the user anyway.
	KCDEnabled bool
	// MappingEnabled is cert.mapping.enabled as written; it is honoured only
	// with KCD on (see MappingHonoured).
	MappingEnabled bool
	// LDAPURL is cert.mapping.ldap.url.
	LDAPURL string
	// BaseDN is cert.mapping.ldap.basedn.
	BaseDN string
	// BindDN is cert.mapping.ldap.user.
	BindDN string
	// Password is the KCD service account's password, used for the bind.
	Password secret.Secret
	// LDAPCAFile verifies the directory's TLS certificate; empty means the
	// system roots. Already resolved against the install directory.
	LDAPCAFile string
	// StartTLS upgrades an ldap:// URL with StartTLS.
	StartTLS bool
	// Domains are the KCD domains (realms), the first being the primary.
	Domains []string
	// UPNSuffixRealms maps UPN suffixes that differ from a realm to one.
	UPNSuffixRealms map[string]string
	// CacheTTL is how long a mapping is cached; 0 means certmap's default.
	CacheTTL time.Duration
	// NegativeTTL is how long a miss is cached; 0 means certmap's default.
	NegativeTTL time.Duration
	// StrongMapping requires a strong directory binding for SAN UPNs
	// (certmap.ResolverConfig.StrongMapping).
	StrongMapping bool
	// FallbackWhenUnavailable uses the SAN UPN while the directory is down
	// (certmap.ResolverConfig.FallbackWhenUnavailable); off refuses.
	FallbackWhenUnavailable bool
	// DNSServer is segmesh.dnsServer: where the Global Catalogs are looked
	// up for a mapping URL without a host; empty means the system's.
	DNSServer string
	// LoginIdentity is segmesh.identity.loginIdentity as written; empty
	// means certmap.LoginCertificateUPN.
	LoginIdentity string
	// PoolSize bounds directory connections; 0 means certmap's default.
	PoolSize int
	// ReadyInterval is how long a directory check result is reused by
	// Ready; 0 means 5 s.
	ReadyInterval time.Duration
}

// ConfigFrom derives the role's configuration from config.json.
func ConfigFrom(c *config.Config) Config {
	out := Config{
		KCDEnabled:      c.KCD.Enabled,
		MappingEnabled:  c.Gateway.CertMappingEnabled,
		LDAPURL:         c.Gateway.CertMappingLDAPURL,
		BaseDN:          c.Gateway.CertMappingLDAPBaseDN,
		BindDN:          c.Gateway.CertMappingLDAPUser,
		Password:        c.KCD.ServiceAccountPassword,
		UPNSuffixRealms: c.Segmesh.Identity.UPNSuffixRealms,
		CacheTTL:        time.Duration(c.Segmesh.Identity.CacheTTLSeconds) * time.Second,
		NegativeTTL:     time.Duration(c.Segmesh.Identity.NegativeCacheTTLSeconds) * time.Second,
		StartTLS:        c.Segmesh.Identity.LDAPStartTLS,
		PoolSize:        c.Segmesh.Identity.LDAPPoolSize,
		StrongMapping:   c.Segmesh.Identity.StrongMapping,
		LoginIdentity:   c.Segmesh.Identity.LoginIdentity,
		DNSServer:       c.Segmesh.DNSServer,

		FallbackWhenUnavailable: c.Segmesh.Identity.FallbackWhenUnavailable,
	}
	if f := c.Segmesh.Identity.LDAPCAFile; f != "" {
		out.LDAPCAFile = c.Resolve(f)
	}
	for _, d := range c.KCD.Domains {
		realm := strings.ToUpper(strings.TrimSpace(d.Domain))
		if realm != "" && !slices.Contains(out.Domains, realm) {
			out.Domains = append(out.Domains, realm)
		}
	}
	return out
}

// MappingHonoured reports whether the LDAP mapping runs: cert.mapping.enabled
// with KCD on, as in SEG.
func (c Config) MappingHonoured() bool { return c.MappingEnabled && c.KCDEnabled }

// Validate returns the problems the identity role finds in c beyond
// config.Load's rules. `segmesh run` refuses to start on any error among
// them and `segmesh config check` reports the same problems. When the
// rules find no error it builds the role's parts as Start does
// (buildProblems), so what the LDAP client's constructor refuses is
// refused here too.
func Validate(c *config.Config) []config.Problem {
	cfg := ConfigFrom(c)
	return role.WithBuild(cfg.problems(), cfg.buildProblems)
}

// buildProblems runs Build, as Start and a reload that changes the
// mapping do (it reads the LDAP CA file and reaches no directory), and
// returns its refusal as a problem: certmap.New's rules beyond problems',
// a base DN or a bind DN that does not parse as a distinguished name,
// StartTLS on an ldaps:// URL.
func (c Config) buildProblems() []config.Problem {
	if !c.KCDEnabled {
		return nil
	}
	_, err := c.Build(BuildOptions{NoCache: true})
	if err == nil {
		return nil
	}
	dnFix := "write a distinguished name, for example "
	return role.BuildProblems(role.Identity, err, []role.Setting{
		{Key: config.KeyCertMappingLDAPBaseDN, Value: c.BaseDN,
			Fix: dnFix + "DC=corp,DC=example, or leave it empty to search from the directory's default naming context"},
		{Key: config.KeyCertMappingLDAPUser, Value: c.BindDN,
			Fix: dnFix + "CN=svc_seg,CN=Users,DC=corp,DC=example (PowerShell: (Get-ADUser svc_seg).DistinguishedName)"},
		{Key: certmap.KeyStartTLS, Value: "true",
			Fix: "use ldap:// with " + certmap.KeyStartTLS + ", or ldaps:// with it false"},
		{Key: certmap.KeyPassword,
			Fix: `write the KCD service account's password with the suffix ".plaintext" in ` + certmap.KeyPassword + ": the directory bind uses it"},
		{Key: dnssrv.KeyDNSServer, Value: c.DNSServer,
			Fix: "write the DNS server as an IP address or host:port, for example 10.0.0.10 or 10.0.0.10:53"},
		{Key: config.KeyCertMappingLDAPURL,
			Fix: "correct the mapping settings the message names (segmesh diagnose builds the same client)"},
	})
}

// problems checks what the role needs beyond config.Load's rules; it
// returns every problem at once.
func (c Config) problems() []config.Problem {
	if !c.KCDEnabled {
		return nil
	}
	var out []config.Problem
	bad := func(key, value, msg, fix string) {
		out = append(out, config.Problem{Severity: config.SeverityError, Key: key, Value: value, Message: msg, Fix: fix})
	}
	if len(c.Domains) == 0 {
		bad("kcd.domains", "", "no domain configured, so no UPN suffix can be matched to a realm", `add {"domain": "CORP.EXAMPLE", "domainController": "dc1.corp.example"}`)
	} else if _, err := upn.NewRealms(c.Domains, nil); err != nil {
		bad("kcd.domains", strings.Join(c.Domains, ","), err.Error(), "write each domain once, as a DNS domain name in upper case")
	} else {
		suffixes := slices.Sorted(maps.Keys(c.UPNSuffixRealms))
		for _, suffix := range suffixes {
			realm := c.UPNSuffixRealms[suffix]
			if _, err := upn.NewRealms(c.Domains, map[string]string{suffix: realm}); err != nil {
				bad("segmesh.identity.upnSuffixRealms."+suffix, realm, err.Error(), "map a UPN suffix (a DNS domain name) to one of the configured domains")
			}
		}
	}
	if c.MappingHonoured() {
		if _, err := certmap.ParseURL(c.LDAPURL); err != nil {
			reason, value := err.Error(), ""
			if ue, ok := errors.AsType[*certmap.URLError](err); ok {
				reason, value = ue.Reason, ue.Raw // Raw hides a password in the URL
			}
			bad(config.KeyCertMappingLDAPURL, value, reason, certmap.URLFix)
		}
		if c.BindDN == "" {
			bad(config.KeyCertMappingLDAPUser, "", "certificate mapping is on but no bind user is set",
				"write the KCD service account's distinguished name, for example CN=svc_seg,CN=Users,DC=corp,DC=example")
		}
		if c.LDAPCAFile != "" {
			if _, err := c.ldapRoots(); err != nil {
				out = append(out, config.ProblemOf(keyLDAPCAFile, c.LDAPCAFile, err, ldapCAFix))
			}
		}
	}
	if login, err := certmap.ParseLoginIdentity(c.LoginIdentity); err != nil {
		bad(certmap.KeyLoginIdentity, c.LoginIdentity, "unknown login identity", "write certificateUpn (the certificate's UPN, SEG's behaviour), onPremisesUpn or onPremisesSamAccountName")
	} else if login != certmap.LoginCertificateUPN && !c.MappingHonoured() {
		bad(certmap.KeyLoginIdentity, c.LoginIdentity, "the on-premises login identity is looked up in the directory through the certificate mapping's connection, which is off",
			"turn cert.mapping.enabled on (with KCD on, cert.mapping.ldap.url and cert.mapping.ldap.user), or set "+certmap.KeyLoginIdentity+" to certificateUpn")
	}
	if c.StrongMapping && !c.MappingHonoured() {
		bad("segmesh.identity.strongMapping", "true", "strong mapping needs certificate mapping, which is off",
			"turn cert.mapping.enabled on (with KCD on), or set strongMapping to false")
	}
	return out
}
