package certmap

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/segmesh/segmesh/pkg/upn"
)

// Source says where a resolved UPN came from.
type Source int

// Sources of a UPN.
const (
	// SourceLDAP is the LDAP certificate mapping (userCertificate).
	SourceLDAP Source = iota + 1
	// SourceSAN is the certificate's SAN otherName UPN.
	SourceSAN
	// SourceAltSecurityIdentities is the userPrincipalName of the user whose
	// altSecurityIdentities holds Kerberos:<the certificate's SAN UPN>.
	SourceAltSecurityIdentities
	// SourceLoginIdentity is the directory user found by the certificate's
	// SAN UPN or email under segmesh.identity.loginIdentity; the UPN is that
	// user's userPrincipalName or sAMAccountName@domain.
	SourceLoginIdentity
)

// String returns "ldap_mapping" or "certificate_san".
func (s Source) String() string {
	switch s {
	case SourceLDAP:
		return "ldap_mapping"
	case SourceSAN:
		return "certificate_san"
	case SourceAltSecurityIdentities:
		return "alt_security_identities"
	case SourceLoginIdentity:
		return "directory_login"
	}
	return fmt.Sprintf("source(%d)", int(s))
}

// Identity is the user a certificate stands for.
type Identity struct {
	// UPN is the user principal name with its realm set.
	UPN upn.UPN
	// Source says whether the mapping or the SAN gave it.
	Source Source
	// DN is the user's distinguished name when the directory was asked and
	// knows the user; empty otherwise.
	DN string
	// SANUPN is the certificate's SAN UPN when it was used, even if the
	// directory replaced it (SourceAltSecurityIdentities); empty otherwise.
	SANUPN string
	// Cached reports whether every directory answer the identity rests on
	// came from the mapping cache; false when the directory was not asked.
	Cached bool
}

// Lookup is what a Resolver needs from a Mapper; a fake stands in for tests.
type Lookup interface {
	// Map returns the user holding the certificate; see Mapper.Map.
	Map(ctx context.Context, der []byte) (Mapping, error)
	// MapUPN returns the user a UPN names, by userPrincipalName or
	// altSecurityIdentities; see Mapper.MapUPN.
	MapUPN(ctx context.Context, upn string) (Mapping, error)
}

// ResolverConfig configures a Resolver.
type ResolverConfig struct {
	// Mapper is the LDAP mapping; nil means mapping is off (disabled, or
	// KCD is off, in which case SEG considers it disabled).
	Mapper Lookup
	// Realms matches UPN suffixes to the configured realms. Required.
	Realms *upn.Realms
	// FallbackWhenUnavailable uses the SAN UPN when the directory cannot be
	// asked (down, bind refused, timeout). The default refuses: the mapping
	// is the security boundary, and during an outage a certificate published
	// on mallory but naming alice in its SAN would otherwise act as alice.
	FallbackWhenUnavailable bool
	// StrongMapping accepts a SAN UPN only when the directory binds the
	// certificate to that user strongly (KB5014754): altSecurityIdentities
	// X509:<I>…<SR>…, X509:<SKI>… or X509:<SHA1-PUKEY>…, or the certificate's
	// SID extension equal to the user's objectSid. A userCertificate match is
	// strong by itself. Requires Mapper.
	StrongMapping bool
	// LoginIdentity chooses the delegated identity; empty means
	// LoginCertificateUPN. Any other needs a Mapper that is also an
	// AddressLookup.
	LoginIdentity LoginIdentity
	// Logger receives refusals with their cause; nil means none.
	Logger *slog.Logger
}

// Resolver turns a verified client certificate into a user, with SEG's
// precedence: the mapping first; when the directory holds the certificate on
// no user, the certificate's SAN UPN; otherwise a *RefusedError. With the
// mapping on, a SAN UPN that is no user's userPrincipalName but is in one
// user's altSecurityIdentities (Kerberos:<upn>) becomes that user's UPN.
type Resolver struct {
	cfg ResolverConfig
	log *slog.Logger
}

// NewResolver returns a Resolver. It does no I/O.
func NewResolver(cfg ResolverConfig) (*Resolver, error) {
	if cfg.Realms == nil {
		return nil, errors.New("certmap: resolver needs the configured realms")
	}
	if cfg.StrongMapping && cfg.Mapper == nil {
		return nil, errors.New("certmap: strong mapping needs certificate mapping: turn cert.mapping.enabled on (with KCD on) or strong mapping off")
	}
	if cfg.LoginIdentity == "" {
		cfg.LoginIdentity = LoginCertificateUPN
	}
	if _, err := ParseLoginIdentity(string(cfg.LoginIdentity)); err != nil {
		return nil, err
	}
	if cfg.LoginIdentity != LoginCertificateUPN {
		if _, ok := cfg.Mapper.(AddressLookup); !ok {
			return nil, fmt.Errorf("certmap: %s %s looks the user up in the directory: turn cert.mapping.enabled on (with KCD on), or set it to %s", KeyLoginIdentity, cfg.LoginIdentity, LoginCertificateUPN)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Resolver{cfg: cfg, log: log}, nil
}

// MappingEnabled reports whether the resolver consults the directory.
func (r *Resolver) MappingEnabled() bool { return r.cfg.Mapper != nil }

// RefusedError is returned when a certificate yields no usable UPN.
type RefusedError struct {
	// Reason is the cause and the fix, for the log and diagnose (not for the device).
	Reason string
	// Mapping is why the mapping gave no UPN; nil when it was not consulted.
	Mapping error
	// SAN is why the certificate's SAN gave no UPN; nil when not consulted.
	SAN error
	// Unavailable reports whether the directory could not be asked, so a
	// retry later may succeed.
	Unavailable bool
	// Setting is the setting whose choice led to the refusal
	// (KeyLoginIdentity); empty for SEG's own rules.
	Setting string
}

// Error implements error.
func (e *RefusedError) Error() string {
	var b strings.Builder
	b.WriteString("certmap: certificate refused: ")
	b.WriteString(e.Reason)
	if e.Mapping != nil {
		b.WriteString("; mapping: ")
		b.WriteString(e.Mapping.Error())
	}
	if e.SAN != nil {
		b.WriteString("; certificate SAN: ")
		b.WriteString(e.SAN.Error())
	}
	return b.String()
}

// Unwrap returns the mapping and SAN causes.
func (e *RefusedError) Unwrap() []error {
	var errs []error
	if e.Mapping != nil {
		errs = append(errs, e.Mapping)
	}
	if e.SAN != nil {
		errs = append(errs, e.SAN)
	}
	return errs
}

// Resolve returns the user cert stands for. cert must already be verified
// against the trust store. A refusal is a *RefusedError.
func (r *Resolver) Resolve(ctx context.Context, cert *x509.Certificate) (Identity, error) {
	if cert == nil || len(cert.Raw) == 0 {
		return Identity{}, errors.New("certmap: no certificate")
	}
	var mapErr error
	missCached := false
	if r.cfg.Mapper != nil {
		id, final, err := r.fromMapping(ctx, cert)
		if final {
			if err != nil && ctx.Err() == nil {
				r.log.WarnContext(ctx, "certificate refused", "subject", cert.Subject.String(), "error", err)
			}
			return id, err
		}
		mapErr, missCached = err, id.Cached
	}
	var id Identity
	var err error
	if r.cfg.LoginIdentity != LoginCertificateUPN {
		id, err = r.fromLogin(ctx, cert, mapErr, missCached)
	} else {
		id, err = r.fromSAN(ctx, cert, mapErr, missCached)
	}
	if err != nil {
		r.log.WarnContext(ctx, "certificate refused", "subject", cert.Subject.String(), "error", err)
	}
	return id, err
}

// fromMapping asks the directory. final is false when the SAN is to be
// tried next, with err saying why the mapping did not answer.
func (r *Resolver) fromMapping(ctx context.Context, cert *x509.Certificate) (id Identity, final bool, err error) {
	m, err := r.cfg.Mapper.Map(ctx, cert.Raw)
	var amb *AmbiguousError
	var noUPN *NoUPNError
	switch {
	case err == nil && r.cfg.LoginIdentity == LoginOnPremisesSAMAccountName:
		name, lerr := r.loginName(m)
		if lerr != nil {
			return Identity{}, true, &RefusedError{Reason: lerr.Error(), Setting: KeyLoginIdentity}
		}
		u, perr := r.cfg.Realms.Resolve(name)
		if perr != nil {
			return Identity{}, true, &RefusedError{Reason: fmt.Sprintf("the directory maps the certificate to %s, whose sAMAccountName@domain %q is unusable: fix the user", m.DN, name), Mapping: perr, Setting: KeyLoginIdentity}
		}
		return Identity{UPN: u, Source: SourceLDAP, DN: m.DN, Cached: m.Cached}, true, nil
	case err == nil:
		u, perr := r.cfg.Realms.Resolve(m.UPN)
		if perr != nil {
			// The directory ties the certificate to this user: never fall
			// back to a SAN name, which may be someone else's.
			return Identity{}, true, &RefusedError{
				Reason:  fmt.Sprintf("the directory maps the certificate to %s, whose userPrincipalName is unusable: fix the user's UPN or map its suffix to a realm", m.DN),
				Mapping: perr,
			}
		}
		return Identity{UPN: u, Source: SourceLDAP, DN: m.DN, Cached: m.Cached}, true, nil
	case errors.Is(err, ErrNotFound):
		return Identity{Cached: m.Cached}, false, err
	case errors.As(err, &amb):
		return Identity{}, true, &RefusedError{Reason: "several directory users hold the certificate: keep it on exactly one", Mapping: err}
	case errors.As(err, &noUPN):
		return Identity{}, true, &RefusedError{Reason: "the directory user holding the certificate has no UPN: set its userPrincipalName", Mapping: err}
	case ctx.Err() != nil:
		return Identity{}, true, err // the caller left: no refusal to explain
	default:
		if r.cfg.FallbackWhenUnavailable {
			r.log.WarnContext(ctx, "directory unavailable, using the certificate's SAN UPN", "error", err)
			return Identity{}, false, err
		}
		return Identity{}, true, &RefusedError{
			Reason:      "the directory could not be asked and segmesh does not guess the user without it: fix the directory connection",
			Mapping:     err,
			Unavailable: true,
		}
	}
}

// fromSAN uses the certificate's SAN UPN. missCached reports whether the
// mapping's miss came from its cache; the identity is Cached when every
// directory answer it rests on was.
func (r *Resolver) fromSAN(ctx context.Context, cert *x509.Certificate, mapErr error, missCached bool) (Identity, error) {
	s, err := upn.FromCertificate(cert)
	if err == nil {
		_, err = upn.Parse(s)
	}
	if err == nil {
		id := Identity{Source: SourceSAN, SANUPN: s, Cached: missCached}
		final := s
		if r.cfg.Mapper != nil && mapErr != nil && errors.Is(mapErr, ErrNotFound) {
			var refused error
			final, id, refused = r.translate(ctx, cert, s, id)
			if refused != nil {
				return Identity{}, refused
			}
		}
		u, perr := r.cfg.Realms.Resolve(final)
		if perr == nil {
			id.UPN = u
			return id, nil
		}
		err = perr
	}
	refused := &RefusedError{Mapping: mapErr, SAN: err}
	var de *DirectoryError
	var be *BindError
	refused.Unavailable = errors.As(mapErr, &de) || errors.As(mapErr, &be)
	switch {
	case errors.Is(err, upn.ErrNoUPN) && r.cfg.Mapper != nil:
		refused.Reason = "no user holds the certificate and it has no UPN: " + hintPublish + " (and " + hintIndex + ")"
	case errors.Is(err, upn.ErrNoUPN):
		refused.Reason = "the certificate has no UPN in its SAN and certificate mapping is off: issue certificates with a UPN, or enable cert.mapping.enabled (with KCD on) and " + hintPublish
	default:
		refused.Reason = "the certificate's SAN UPN is unusable"
		if r.cfg.Mapper != nil {
			refused.Reason += " and no user holds the certificate: " + hintPublish
		}
	}
	return Identity{}, refused
}

// translate asks the directory who the SAN UPN s names. A user with that
// userPrincipalName keeps it; a user holding altSecurityIdentities
// Kerberos:<s> gives its own UPN; no user leaves s for the KDC to judge.
// Several users are a refusal; a directory failure keeps s (the mapping
// search just ran, so this is the SAN path SEG would take anyway). With
// strong mapping on, the user must exist and be bound to cert strongly.
func (r *Resolver) translate(ctx context.Context, cert *x509.Certificate, s string, id Identity) (string, Identity, error) {
	m, err := r.cfg.Mapper.MapUPN(ctx, s)
	id.Cached = id.Cached && m.Cached
	var amb *AmbiguousError
	switch {
	case err == nil:
		if r.cfg.StrongMapping {
			form, ok := StrongMatch(cert, m)
			if !ok {
				return "", id, &RefusedError{
					Reason: fmt.Sprintf("strong mapping is on and the certificate is not bound to %s: add one of %s to its altSecurityIdentities, or %s",
						m.DN, strings.Join(StrongForms(cert), " | "), hintPublish),
				}
			}
			r.log.DebugContext(ctx, "strong mapping", "dn", m.DN, "form", form)
		}
		id.DN = m.DN
		if m.AltSecurityIdentity {
			id.Source = SourceAltSecurityIdentities
			r.log.DebugContext(ctx, "SAN UPN found in altSecurityIdentities", "san_upn", s, "upn", m.UPN, "dn", m.DN)
			return m.UPN, id, nil
		}
		return s, id, nil
	case errors.As(err, &amb):
		return "", id, &RefusedError{Reason: "several directory users hold the certificate's UPN in altSecurityIdentities: keep it on exactly one", SAN: err}
	case r.cfg.StrongMapping && errors.Is(err, ErrNotFound):
		return "", id, &RefusedError{Reason: "strong mapping is on and no directory user is named by the certificate's UPN: " + hintPublish, SAN: err}
	case errors.Is(err, ErrNotFound):
		return s, id, nil
	case r.cfg.StrongMapping:
		return "", id, &RefusedError{Reason: "strong mapping is on and the directory could not confirm the user: fix the directory connection", SAN: err, Unavailable: true}
	default:
		r.log.WarnContext(ctx, "looking up the SAN UPN failed, using it as is", "san_upn", s, "error", err)
		return s, id, nil
	}
}
