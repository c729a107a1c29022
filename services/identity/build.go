package identity

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/segmesh/segmesh/pkg/certmap"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/dnssrv"
	"github.com/segmesh/segmesh/pkg/upn"
)

// BuildOptions are what a caller of Build supplies beyond the
// configuration: the clock, the log and test seams. `segmesh run` and
// `segmesh diagnose` differ only here, never in what the configuration
// means.
type BuildOptions struct {
	// Lookup replaces the LDAP mapper (tests); nil builds one from the
	// configuration when mapping is honoured.
	Lookup certmap.Lookup
	// NoCache makes every lookup ask the directory, with one connection
	// (diagnose); false caches as configured.
	NoCache bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the mapper's events; nil discards them.
	Logger *slog.Logger
	// Dial replaces the directory dialer (tests); nil means net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Hooks observe lookups and cache use (metrics).
	Hooks certmap.Hooks
}

// Parts are what the identity role builds from its configuration.
type Parts struct {
	// Realms matches UPN suffixes to the configured realms.
	Realms *upn.Realms
	// Mapper is the LDAP certificate mapping; nil when mapping is not
	// honoured or BuildOptions.Lookup replaced it.
	Mapper *certmap.Mapper
	// Resolver turns a certificate into a user as the role does: the
	// mapping, strong mapping and the fallback while the directory is down.
	Resolver *certmap.Resolver
}

// Build makes the role's parts from c: it reads the LDAP CA file but
// reaches no directory. The identity role and `segmesh diagnose` both call
// it, so their verdicts on a certificate cannot differ (StartTLS, strong
// mapping, fallback when the directory is down).
func (c Config) Build(o BuildOptions) (Parts, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	realms, err := upn.NewRealms(c.Domains, c.UPNSuffixRealms)
	if err != nil {
		return Parts{}, err
	}
	p := Parts{Realms: realms}
	login, err := certmap.ParseLoginIdentity(c.LoginIdentity)
	if err != nil {
		return Parts{}, err
	}
	rc := certmap.ResolverConfig{
		Realms: realms, Logger: o.Logger, LoginIdentity: login,
		StrongMapping: c.StrongMapping, FallbackWhenUnavailable: c.FallbackWhenUnavailable,
	}
	if c.MappingHonoured() {
		if o.Lookup != nil {
			rc.Mapper = o.Lookup
		} else {
			if p.Mapper, err = c.newMapper(o); err != nil {
				return Parts{}, err
			}
			rc.Mapper = p.Mapper
		}
	}
	if p.Resolver, err = certmap.NewResolver(rc); err != nil {
		return Parts{}, err
	}
	return p, nil
}

// newMapper builds the LDAP mapping: URL, bind, StartTLS, the CA, the pool
// and the caches.
func (c Config) newMapper(o BuildOptions) (*certmap.Mapper, error) {
	var roots *x509.CertPool
	if c.LDAPCAFile != "" {
		var err error
		if roots, err = c.ldapRoots(); err != nil {
			return nil, err
		}
	}
	mc := certmap.Config{
		URL: c.LDAPURL, BaseDN: c.BaseDN, BindDN: c.BindDN, Password: c.Password,
		StartTLS: c.StartTLS, RootCAs: roots, PoolSize: c.PoolSize,
		CacheTTL: c.CacheTTL, NegativeTTL: c.NegativeTTL,
		Now: o.Now, Logger: o.Logger, DialContext: o.Dial, Hooks: o.Hooks,
	}
	if o.NoCache {
		mc.PoolSize, mc.CacheSize, mc.CacheTTL = 1, -1, -1
	}
	if ep, err := certmap.ParseURL(c.LDAPURL); err == nil && ep.Discover && len(c.Domains) > 0 {
		// A URL without a host: the Global Catalogs of the primary
		// domain, _gc._tcp.<domain>, at segmesh.dnsServer.
		f, err := dnssrv.New(c.DNSServer)
		if err != nil {
			return nil, err
		}
		mc.DNS, mc.Domain = f, strings.ToLower(c.Domains[0])
	}
	return certmap.New(mc)
}

// Setting name and fix of the directory's CA bundle.
const (
	keyLDAPCAFile = "segmesh.identity.ldapCaFile"
	ldapCAFix     = "name the PEM CA bundle that issued the directory's LDAPS certificate (the AD CS root), or leave it empty for the system roots"
)

// ldapRoots reads segmesh.identity.ldapCaFile through pkg/config's CAPool
// (opened without blocking, a regular file only, bounded): the start,
// every reload that builds a mapper and Validate (so `config check`) read
// it, and a FIFO there would block them. The error is a *config.Problem.
func (c Config) ldapRoots() (*x509.CertPool, error) {
	return config.CAPool(keyLDAPCAFile, c.LDAPCAFile, ldapCAFix)
}
