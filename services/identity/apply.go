package identity

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/segmesh/segmesh/pkg/certmap"
	"github.com/segmesh/segmesh/pkg/config"
)

// liveKeys are the settings the identity role applies from a reloaded
// config.json (role.ConfigApplier). kcd.enabled, cert.mapping.enabled,
// strongMapping and fallbackWhenUnavailable are not among them: turning
// them off weakens who is delegated, so they take a restart (segmesh run
// names them as waiting for one).
var liveKeys = []string{
	config.KeyCertMappingLDAPURL, config.KeyCertMappingLDAPUser, config.KeyCertMappingLDAPBaseDN,
	"kcd.serviceAccountPassword", "kcd.domains", "segmesh.dnsServer",
	"segmesh.identity.upnSuffixRealms", "segmesh.identity.ldapCaFile", "segmesh.identity.ldapStartTls",
	"segmesh.identity.ldapPoolSize", "segmesh.identity.cacheTtlSeconds", "segmesh.identity.negativeCacheTtlSeconds",
	certmap.KeyLoginIdentity,
}

// retireGrace is how long a replaced mapper keeps its connections for the
// lookups that started on it (a lookup is bounded by the dial and
// operation timeouts, 5 s each by default) before it is closed.
const retireGrace = 30 * time.Second

// LiveKeys implements role.ConfigApplier.
func (s *Service) LiveKeys() []string { return liveKeys }

// PrepareConfig implements role.ConfigApplier. It builds the mapping next
// describes and proves it: a
// connection to the new directory, bound with the new account and
// password, that reads the search base. A broken URL, account or password
// is refused with the directory's reason and the running mapping stays.
// The commit swaps the mapping, the realms and the resolver at once:
// lookups already running finish on the old mapper, which is closed
// retireGrace later. The cached mappings are kept when no setting that
// changes or vouches for an answer changed (a new password), and flushed
// otherwise (a new CA file or StartTLS too); the
// mapping generation in every answer changes with them, which makes edges
// drop the mappings they cached (services/edge). A reload never binds
// without TLS where the running mapping binds with it.
func (s *Service) PrepareConfig(ctx context.Context, next *config.Config) (commit func(), err error) {
	s.mu.Lock()
	cur, oldMapper := s.applied, s.mapper
	s.mu.Unlock()
	cfg := ConfigFrom(next)
	// The security switches stay as the start set them.
	cfg.KCDEnabled, cfg.MappingEnabled = s.cfg.KCDEnabled, s.cfg.MappingEnabled
	cfg.StrongMapping, cfg.FallbackWhenUnavailable = s.cfg.StrongMapping, s.cfg.FallbackWhenUnavailable
	cfg.ReadyInterval = s.cfg.ReadyInterval
	if err := config.ErrorOf(next.FilePath(), cfg.problems()); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if !cfg.KCDEnabled {
		return func() { s.setApplied(cfg) }, nil
	}
	if err := weakerTransport(cur, cfg); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	parts, err := cfg.Build(s.buildOptions())
	if err != nil {
		return nil, fmt.Errorf("identity: %w (the running mapping stays in use)", err)
	}
	kept := false
	if parts.Mapper != nil {
		if err := s.refusals.Lately(bindCredentials(cfg)...); err != nil {
			return nil, fmt.Errorf("identity: the new directory settings do not work; the running mapping stays in use: %w", err)
		}
		if err := s.prove(ctx, cfg); err != nil {
			if be, ok := errors.AsType[*certmap.BindError](err); ok && be.CredentialsRefused() {
				s.refusals.Note(err, bindCredentials(cfg)...)
			}
			return nil, fmt.Errorf("identity: the new directory settings do not work; the running mapping stays in use: %w", err)
		}
		if oldMapper != nil && answersKey(cur) == answersKey(cfg) && cur.CacheTTL == cfg.CacheTTL && cur.NegativeTTL == cfg.NegativeTTL {
			parts.Mapper.ShareCache(oldMapper)
			kept = true
		}
	}
	return func() {
		s.mu.Lock()
		old := s.mapper
		s.applied, s.realms, s.mapper, s.resolver = cfg, parts.Realms, parts.Mapper, parts.Resolver
		s.checkErr, s.checkedAt = nil, s.now()
		s.generation = generationOf(cfg)
		if old != nil && old != parts.Mapper {
			s.retired = append(s.retired, old)
			time.AfterFunc(retireGrace, func() { s.closeRetired(old) })
		}
		s.mu.Unlock()
		attrs := []any{"generation", generationOf(cfg), "cache_kept", kept}
		if parts.Mapper != nil {
			attrs = append(attrs, "ldap", parts.Mapper.Endpoint().String(), "base_dn", parts.Mapper.BaseDN())
		}
		s.log.Info("certificate mapping settings changed; new lookups use them, lookups under way finish on the old ones", attrs...)
	}, nil
}

// Generation returns the mapping generation in force: the hash of the
// settings that decide an answer, carried in every MapCertificate answer.
func (s *Service) Generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.generation
}

// prove binds to the directory cfg names, on a connection of its own
// closed before returning.
func (s *Service) prove(ctx context.Context, cfg Config) error {
	o := s.buildOptions()
	o.NoCache, o.Hooks = true, certmap.Hooks{}
	probe, err := cfg.Build(o)
	if err != nil {
		return err
	}
	defer func() { _ = probe.Mapper.Close() }()
	return probe.Mapper.Check(ctx)
}

// bindCredentials are what a bind proves, as the parts refusal.Memory
// digests: the account and its password. The directory is not among them:
// every domain controller of the domain counts a failed bind towards the
// same account's lockout.
func bindCredentials(c Config) []string {
	return []string{strings.ToLower(c.BindDN), c.Password.Reveal()}
}

// closeRetired closes a replaced mapper once, when its grace ends or at
// Stop.
func (s *Service) closeRetired(m *certmap.Mapper) {
	s.mu.Lock()
	i := slices.Index(s.retired, m)
	if i >= 0 {
		s.retired = slices.Delete(s.retired, i, i+1)
	}
	s.mu.Unlock()
	if i >= 0 {
		_ = m.Close()
	}
}

func (s *Service) setApplied(cfg Config) {
	s.mu.Lock()
	s.applied, s.generation = cfg, generationOf(cfg)
	s.mu.Unlock()
}

// weakerTransport refuses a reload that would bind to the directory
// without TLS while the running mapping binds with it: the service
// account's password would cross the network in clear.
func weakerTransport(cur, next Config) error {
	if !cur.MappingHonoured() {
		return nil
	}
	tlsOf := func(c Config) bool {
		ep, err := certmap.ParseURL(c.LDAPURL)
		return err == nil && (ep.TLS || c.StartTLS)
	}
	if tlsOf(cur) && !tlsOf(next) {
		return errors.New(config.KeyCertMappingLDAPURL + " " + next.LDAPURL + " with segmesh.identity.ldapStartTls false binds without TLS, where the running mapping binds with TLS: " +
			"the service account's password would cross the network in clear. A reload never weakens this; use ldaps:// or StartTLS, or restart segmesh to apply it")
	}
	return nil
}

// answersKey is what decides a mapping's answer: the directory, the
// account that reads it, where and how it searches, how a UPN becomes a
// realm, and the transport that vouches for the answers (StartTLS and the CA
// file: answers read over a transport a reload strengthens may have been
// written by whoever was on the old path, TestAttackStrongerTransportKeepsTheCache).
// The password, the pool and the cache lifetimes are not in it.
func answersKey(c Config) string {
	suffixes := slices.Sorted(maps.Keys(c.UPNSuffixRealms))
	var b strings.Builder
	for _, s := range suffixes {
		b.WriteString(s + "=" + c.UPNSuffixRealms[s] + ";")
	}
	return strings.Join([]string{
		fmt.Sprint(c.KCDEnabled, c.MappingEnabled, c.StrongMapping, c.FallbackWhenUnavailable),
		c.LDAPURL, c.BaseDN, c.BindDN, c.DNSServer, c.LoginIdentity, fmt.Sprint(c.StartTLS), c.LDAPCAFile,
		strings.Join(c.Domains, ","), b.String(),
	}, "\x00")
}

// generationOf is the mapping generation of cfg: a hash of answersKey, the
// same in every replica that runs the same settings (a counter would start
// again at a restart). The edge drops its cached mappings when it changes.
func generationOf(cfg Config) uint64 {
	sum := sha256.Sum256([]byte(answersKey(cfg)))
	return binary.BigEndian.Uint64(sum[:8])
}
