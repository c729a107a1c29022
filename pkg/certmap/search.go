package certmap

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// lookup searches the directory. It returns the answer, or an error when
// there is none (bind, network, timeout, a search failure).
func (m *Mapper) lookup(ctx context.Context, search func(conn *ldap.Conn, base string) (answer, error)) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.DialTimeout+m.cfg.OpTimeout)
	defer cancel()
	var a answer
	err := m.pool.do(ctx, func(conn *ldap.Conn) error {
		base, err := m.searchBase(ctx, conn)
		if err != nil {
			return err
		}
		a, err = search(conn, base)
		return err
	})
	if err != nil {
		return answer{}, m.wrap("search", err)
	}
	return a, nil
}

// searchAttributes lists the attributes a user search asks for.
func searchAttributes() []string {
	return []string{"userPrincipalName", "distinguishedName", "sAMAccountName", "altSecurityIdentities", "objectSid"}
}

// maxEntries is how many users the search asks for at most: two tell
// "several", the rest name them in the error.
const maxEntries = 10

func (m *Mapper) searchCertificate(conn *ldap.Conn, base string, der []byte) (answer, error) {
	entries, err := m.searchUsers(conn, base, userCertificateFilter(der))
	if err != nil {
		return answer{}, err
	}
	switch len(entries) {
	case 0:
		return answer{err: &NotFoundError{BaseDN: base, GlobalCatalog: m.ep.GlobalCatalog()}}, nil
	case 1:
		return mappingOf(entries[0])
	default:
		return answer{err: &AmbiguousError{DNs: dnsOf(entries)}}, nil
	}
}

func (m *Mapper) searchUPN(conn *ldap.Conn, base, upn string) (answer, error) {
	esc := EscapeBytes([]byte(upn))
	filter := "(&(objectClass=user)(|(userPrincipalName=" + esc + ")(altSecurityIdentities=" + EscapeBytes([]byte("Kerberos:")) + esc + ")))"
	entries, err := m.searchUsers(conn, base, filter)
	if err != nil {
		return answer{}, err
	}
	// The KDC resolves a name by userPrincipalName first; so do we.
	var alt []*ldap.Entry
	for _, e := range entries {
		if strings.EqualFold(e.GetEqualFoldAttributeValue("userPrincipalName"), upn) {
			return mappingOf(e)
		}
		alt = append(alt, e)
	}
	switch len(alt) {
	case 0:
		return answer{err: &NotFoundError{BaseDN: base, GlobalCatalog: m.ep.GlobalCatalog(), UPN: upn}}, nil
	case 1:
		a, err := mappingOf(alt[0])
		a.mapping.AltSecurityIdentity = true
		return a, err
	default:
		return answer{err: &AmbiguousError{DNs: dnsOf(alt), UPN: upn}}, nil
	}
}

// searchUsers runs a subtree search for users under base.
func (m *Mapper) searchUsers(conn *ldap.Conn, base, filter string) ([]*ldap.Entry, error) {
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		maxEntries, int(m.cfg.OpTimeout/time.Second), false, filter, searchAttributes(), nil)
	res, err := conn.Search(req)
	if err != nil && (!ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) || res == nil) {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return nil, &DirectoryError{Op: "search", Endpoint: m.ep.String(), Err: err,
				Hint: fmt.Sprintf("the base DN %s does not exist: check the URL's path, cert.mapping.ldap.basedn or leave both empty to use the rootDSE", base)}
		}
		return nil, err
	}
	return res.Entries, nil
}

func mappingOf(e *ldap.Entry) (answer, error) {
	dn := e.DN
	if dn == "" {
		dn = e.GetEqualFoldAttributeValue("distinguishedName")
	}
	upn := e.GetEqualFoldAttributeValue("userPrincipalName")
	if upn == "" {
		return answer{err: &NoUPNError{DN: dn}}, nil
	}
	m := Mapping{
		UPN: upn, DN: dn,
		SAMAccountName:        e.GetEqualFoldAttributeValue("sAMAccountName"),
		AltSecurityIdentities: e.GetEqualFoldAttributeValues("altSecurityIdentities"),
	}
	if raw := e.GetEqualFoldRawAttributeValue("objectSid"); len(raw) > 0 {
		m.ObjectSID, _ = sidString(raw) // a malformed SID only disables the SID check
	}
	return answer{mapping: m}, nil
}

func dnsOf(entries []*ldap.Entry) []string {
	dns := make([]string, len(entries))
	for i, e := range entries {
		dns[i] = e.DN
	}
	return dns
}

// searchBase returns the configured base DN, or reads it once from the
// rootDSE: defaultNamingContext, or on a Global Catalog port
// rootDomainNamingContext, the forest root.
func (m *Mapper) searchBase(ctx context.Context, conn *ldap.Conn) (string, error) {
	m.baseMu.Lock()
	base := m.baseDN
	m.baseMu.Unlock()
	if base != "" {
		return base, nil
	}
	attr := "defaultNamingContext"
	if m.ep.GlobalCatalog() {
		attr = "rootDomainNamingContext"
	}
	req := ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1,
		int(m.cfg.OpTimeout/time.Second), false, "(objectClass=*)", []string{attr}, nil)
	res, err := conn.Search(req)
	if err != nil && isConnBroken(err, conn) {
		return "", err
	}
	if err != nil {
		return "", &DirectoryError{Op: "read rootDSE", Endpoint: m.ep.String(), Err: err,
			Hint: "set cert.mapping.ldap.basedn or put the base DN in the URL's path"}
	}
	if len(res.Entries) == 1 {
		base = res.Entries[0].GetEqualFoldAttributeValue(attr)
	}
	if base == "" {
		return "", &DirectoryError{Op: "read rootDSE", Endpoint: m.ep.String(), Err: fmt.Errorf("no %s", attr),
			Hint: "set cert.mapping.ldap.basedn or put the base DN in the URL's path"}
	}
	m.baseMu.Lock()
	m.baseDN = base
	m.baseMu.Unlock()
	m.log.InfoContext(ctx, "ldap search base from rootDSE", "base_dn", base, "attribute", attr, "ldap", m.ep.String())
	return base, nil
}
