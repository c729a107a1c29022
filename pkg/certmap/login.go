package certmap

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/segmesh/segmesh/pkg/upn"
)

// The settings certmap reads, as config.json names them: New's refusals
// carry them (problem.SettingError) and pkg/config's key names are these.
const (
	// KeyLoginIdentity is the setting that chooses the delegated identity.
	KeyLoginIdentity = "segmesh.identity.loginIdentity"
	// KeyURL is the directory's URL (Config.URL).
	KeyURL = "cert.mapping.ldap.url"
	// KeyBindDN is the bind user's distinguished name (Config.BindDN).
	KeyBindDN = "cert.mapping.ldap.user"
	// KeyBaseDN is the search base (Config.BaseDN).
	KeyBaseDN = "cert.mapping.ldap.basedn"
	// KeyStartTLS upgrades an ldap:// URL with StartTLS (Config.StartTLS).
	KeyStartTLS = "segmesh.identity.ldapStartTls"
	// KeyPassword is the bind user's password (Config.Password): the KCD
	// service account's.
	KeyPassword = "kcd.serviceAccountPassword"
)

// LoginIdentity chooses the identity segmesh delegates, in the manner of
// Entra application proxy's "delegated login identity".
type LoginIdentity string

// The login identities.
const (
	// LoginCertificateUPN delegates the certificate's UPN (SEG's behaviour):
	// the user holding the certificate in userCertificate, else the SAN UPN.
	LoginCertificateUPN LoginIdentity = "certificateUpn"
	// LoginOnPremisesUPN delegates the userPrincipalName of the directory
	// user found by the certificate (userCertificate) or by its SAN UPN or
	// email (userPrincipalName, mail, proxyAddresses, altSecurityIdentities
	// Kerberos:).
	LoginOnPremisesUPN LoginIdentity = "onPremisesUpn"
	// LoginOnPremisesSAMAccountName delegates that user's sAMAccountName in
	// the user's own domain (sAMAccountName@domain, AD's implicit UPN).
	LoginOnPremisesSAMAccountName LoginIdentity = "onPremisesSamAccountName"
)

// LoginIdentities lists the accepted values, the default first.
func LoginIdentities() []LoginIdentity {
	return []LoginIdentity{LoginCertificateUPN, LoginOnPremisesUPN, LoginOnPremisesSAMAccountName}
}

// ParseLoginIdentity returns the login identity s names; empty means
// LoginCertificateUPN. Case is ignored.
func ParseLoginIdentity(s string) (LoginIdentity, error) {
	if strings.TrimSpace(s) == "" {
		return LoginCertificateUPN, nil
	}
	for _, l := range LoginIdentities() {
		if strings.EqualFold(strings.TrimSpace(s), string(l)) {
			return l, nil
		}
	}
	return "", fmt.Errorf("certmap: %s %q is none of %s", KeyLoginIdentity, s, loginList())
}

func loginList() string {
	var names []string
	for _, l := range LoginIdentities() {
		names = append(names, string(l))
	}
	return strings.Join(names, ", ")
}

// AddressLookup is what a Resolver needs beyond Lookup when the login
// identity is looked up in the directory; *Mapper implements it.
type AddressLookup interface {
	// MapAddress returns the user an address names; see Mapper.MapAddress.
	MapAddress(ctx context.Context, addr string, upnWins bool) (Mapping, error)
}

// MapAddress returns the directory user whose userPrincipalName, mail,
// proxyAddresses (smtp:<addr>, any case) or altSecurityIdentities
// (Kerberos:<addr>) holds addr: the user a certificate's cloud UPN or email
// address stands for. With upnWins (addr is the certificate's UPN) a
// userPrincipalName match wins over the others, as a KDC resolves that
// name; for an email it does not (AD CS writes the requester's own mail
// into the certificate: a user who set his mail to alice's UPN would be
// delegated as alice), and several holders are ambiguous. It uses the
// mapping's connection and cache; a miss is a *NotFoundError with UPN set,
// several users an *AmbiguousError. Unlike Map, a user without a
// userPrincipalName is an answer (its sAMAccountName can be delegated).
func (m *Mapper) MapAddress(ctx context.Context, addr string, upnWins bool) (Mapping, error) {
	if addr == "" {
		return Mapping{}, errors.New("certmap: empty address")
	}
	kind := "mail\x00"
	if upnWins {
		kind = "addr\x00"
	}
	key := sha256.Sum256([]byte(kind + upn.FoldASCII(addr)))
	if mp, ok, err := m.cached(key); ok {
		return mp, err
	}
	return m.sharedLookup(ctx, key, func(conn *ldap.Conn, base string) (answer, error) {
		return m.searchAddress(conn, base, addr, upnWins)
	})
}

// addressFilter finds users by an address in every attribute that may hold
// it.
func addressFilter(addr string) string {
	esc := EscapeBytes([]byte(addr))
	return "(&(objectClass=user)(|(userPrincipalName=" + esc + ")(mail=" + esc + ")(proxyAddresses=" +
		EscapeBytes([]byte("smtp:")) + esc + ")(altSecurityIdentities=" + EscapeBytes([]byte("Kerberos:")) + esc + ")))"
}

func (m *Mapper) searchAddress(conn *ldap.Conn, base, addr string, upnWins bool) (answer, error) {
	entries, err := m.searchUsers(conn, base, addressFilter(addr))
	if err != nil {
		return answer{}, err
	}
	pick := entries
	for _, e := range entries {
		if upnWins && strings.EqualFold(e.GetEqualFoldAttributeValue("userPrincipalName"), addr) {
			pick = []*ldap.Entry{e}
			break
		}
	}
	switch len(pick) {
	case 0:
		return answer{err: &NotFoundError{BaseDN: base, GlobalCatalog: m.ep.GlobalCatalog(), UPN: addr}}, nil
	case 1:
		a, err := mappingOf(pick[0])
		var noUPN *NoUPNError
		if errors.As(a.err, &noUPN) {
			// The caller decides: a sAMAccountName still names the user.
			e := pick[0]
			a = answer{mapping: Mapping{DN: noUPN.DN, SAMAccountName: e.GetEqualFoldAttributeValue("sAMAccountName"),
				AltSecurityIdentities: e.GetEqualFoldAttributeValues("altSecurityIdentities")}}
		}
		return a, err
	default:
		return answer{err: &AmbiguousError{DNs: dnsOf(pick), UPN: addr}}, nil
	}
}

// DomainOfDN returns the DNS domain a distinguished name's DC components
// name (CN=alice,CN=Users,DC=corp,DC=example → corp.example), or "" when it
// has none.
func DomainOfDN(dn string) string {
	parsed, err := ldap.ParseDN(dn)
	if err != nil {
		return ""
	}
	var labels []string
	for _, rdn := range parsed.RDNs {
		for _, a := range rdn.Attributes {
			if strings.EqualFold(a.Type, "DC") && a.Value != "" {
				labels = append(labels, a.Value)
			}
		}
	}
	return strings.ToLower(strings.Join(labels, "."))
}

// loginName is the name the login identity delegates for the directory
// user m.
func (r *Resolver) loginName(m Mapping) (string, error) {
	switch r.cfg.LoginIdentity {
	case LoginOnPremisesSAMAccountName:
		domain := DomainOfDN(m.DN)
		if m.SAMAccountName == "" || domain == "" {
			return "", fmt.Errorf("%s is %s but the directory user %s has no sAMAccountName or its DN names no domain: fix the user, or set %s to %s",
				KeyLoginIdentity, r.cfg.LoginIdentity, m.DN, KeyLoginIdentity, LoginOnPremisesUPN)
		}
		return m.SAMAccountName + "@" + domain, nil
	default:
		if m.UPN == "" {
			return "", fmt.Errorf("%s is %s but the directory user %s has no userPrincipalName: set it, or set %s to %s",
				KeyLoginIdentity, r.cfg.LoginIdentity, m.DN, KeyLoginIdentity, LoginOnPremisesSAMAccountName)
		}
		return m.UPN, nil
	}
}

// loginAddresses lists what the certificate offers to find its user by:
// its SAN UPN, then its SAN email addresses, each once; sanUPN reports
// whether the first is the SAN UPN.
func loginAddresses(cert *x509.Certificate) (out []string, sanUPN bool) {
	if s, err := upn.FromCertificate(cert); err == nil {
		if _, err := upn.Parse(s); err == nil {
			out, sanUPN = append(out, s), true
		}
	}
	for _, e := range cert.EmailAddresses {
		if e != "" && !slices.ContainsFunc(out, func(s string) bool { return strings.EqualFold(s, e) }) {
			out = append(out, e)
		}
	}
	return out, sanUPN
}

// fromLogin finds the certificate's user in the directory by its SAN UPN or
// email addresses when no user holds the certificate itself, and returns
// the login identity of that user. missCached reports whether the
// certificate search's miss came from the cache.
func (r *Resolver) fromLogin(ctx context.Context, cert *x509.Certificate, mapErr error, missCached bool) (Identity, error) {
	addrs, sanUPN := loginAddresses(cert)
	setting := fmt.Sprintf("%s is %s", KeyLoginIdentity, r.cfg.LoginIdentity)
	if len(addrs) == 0 {
		return Identity{}, &RefusedError{Setting: KeyLoginIdentity, Mapping: mapErr,
			Reason: setting + ", and no user holds the certificate and it carries neither a UPN nor an email address to find the user by: " + hintPublish + ", or issue certificates with the user's UPN or email"}
	}
	cached := missCached
	for i, addr := range addrs {
		m, err := r.cfg.Mapper.(AddressLookup).MapAddress(ctx, addr, i == 0 && sanUPN)
		cached = cached && m.Cached
		var amb *AmbiguousError
		switch {
		case err == nil:
			if r.cfg.StrongMapping {
				if _, ok := StrongMatch(cert, m); !ok {
					return Identity{}, &RefusedError{Setting: KeyLoginIdentity,
						Reason: fmt.Sprintf("strong mapping is on and the certificate is not bound to %s (found by %s under %s): add one of %s to its altSecurityIdentities, or %s",
							m.DN, addr, setting, strings.Join(StrongForms(cert), " | "), hintPublish),
					}
				}
			}
			name, err := r.loginName(m)
			if err != nil {
				return Identity{}, &RefusedError{Setting: KeyLoginIdentity, Reason: err.Error()}
			}
			u, err := r.cfg.Realms.Resolve(name)
			if err != nil {
				return Identity{}, &RefusedError{Setting: KeyLoginIdentity, Reason: fmt.Sprintf("%s and the directory user %s found by %s gives %q, which is no usable UPN: fix the user", setting, m.DN, addr, name), Mapping: err}
			}
			r.log.DebugContext(ctx, "login identity from the directory", "address", addr, "dn", m.DN, "login", u.String(), "setting", KeyLoginIdentity)
			return Identity{UPN: u, Source: SourceLoginIdentity, DN: m.DN, SANUPN: addr, Cached: cached}, nil
		case errors.Is(err, ErrNotFound):
			continue
		case errors.As(err, &amb):
			return Identity{}, &RefusedError{Setting: KeyLoginIdentity, Reason: fmt.Sprintf("%s and several directory users hold %s (userPrincipalName, mail, proxyAddresses or altSecurityIdentities): keep it on exactly one", setting, addr), Mapping: err}
		case ctx.Err() != nil:
			return Identity{}, err
		default:
			// No fallback to the SAN UPN here, whatever
			// fallbackWhenUnavailable says: under this setting the admin has
			// said the certificate's UPN is not the on-premises name, and
			// delegated as it is a KDC may resolve it to another user (a
			// cloud UPN j.smith@corp equal to someone's implicit UPN
			// sAMAccountName@domain). TestAttackLoginIdentityDirectoryDown.
			reason := setting + ", and the directory could not be asked for the user: fix the directory connection"
			if r.cfg.FallbackWhenUnavailable {
				reason += " (fallbackWhenUnavailable does not apply: the certificate's UPN is not the on-premises name under this setting)"
			}
			return Identity{}, &RefusedError{Setting: KeyLoginIdentity,
				Reason:      reason,
				Mapping:     err,
				Unavailable: true,
			}
		}
	}
	return Identity{}, &RefusedError{Setting: KeyLoginIdentity, Mapping: mapErr,
		Reason: fmt.Sprintf("%s, and no directory user holds the certificate or has %s as userPrincipalName, mail, proxyAddresses (smtp:) or altSecurityIdentities (Kerberos:): "+
			"add the address to the user's proxyAddresses, %s, or set %s to %s to delegate the certificate's UPN as it is",
			setting, strings.Join(addrs, " or "), hintPublish, KeyLoginIdentity, LoginCertificateUPN)}
}
