package identity

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/segmesh/segmesh/pkg/certmap"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/secret"
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

// validate checks what the role needs beyond config.Load's rules; it
// returns every problem at once.
func (c Config) validate() error {
	if !c.KCDEnabled {
		return nil
	}
	var errs []error
	if len(c.Domains) == 0 {
		errs = append(errs, errors.New("kcd.domains: no domain configured, so no UPN suffix can be matched to a realm"))
	}
	if c.MappingHonoured() {
		if _, err := certmap.ParseURL(c.LDAPURL); err != nil {
			errs = append(errs, err)
		}
		if c.BindDN == "" {
			errs = append(errs, fmt.Errorf("%s: empty; write the KCD service account's DN", config.KeyCertMappingLDAPUser))
		}
	}
	if c.StrongMapping && !c.MappingHonoured() {
		errs = append(errs, errors.New("strong mapping needs certificate mapping: turn cert.mapping.enabled on (with KCD on)"))
	}
	return errors.Join(errs...)
}
