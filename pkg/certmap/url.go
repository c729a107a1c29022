package certmap

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Global Catalog ports (plain and TLS). A search there covers the whole
// forest, and the rootDSE fallback base DN is the forest root.
const (
	portGC    = 3268
	portGCTLS = 3269
)

// Endpoint is a parsed cert.mapping.ldap.url.
type Endpoint struct {
	// Host is the directory's host name or IP address, without brackets.
	Host string
	// Port is the TCP port: the URL's, else 389 (ldap) or 636 (ldaps).
	Port int
	// TLS reports whether the connection starts with TLS (ldaps://).
	TLS bool
	// BaseDN is the distinguished name in the URL's path, URL-decoded;
	// empty when the URL has none.
	BaseDN string
	// Discover reports a URL without a host (ldaps:///, ldaps://:3269):
	// the Global Catalogs are found in DNS (_gc._tcp.DOMAIN, gc.go) and
	// Port is a Global Catalog port unless the URL names one.
	Discover bool
}

// Addr returns host:port for dialling.
func (e Endpoint) Addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

// GlobalCatalog reports whether the port is a Global Catalog port.
func (e Endpoint) GlobalCatalog() bool { return e.Port == portGC || e.Port == portGCTLS }

// String returns the endpoint as a URL without the base DN, for logs.
func (e Endpoint) String() string {
	scheme := "ldap"
	if e.TLS {
		scheme = "ldaps"
	}
	if e.Discover {
		return scheme + "://:" + strconv.Itoa(e.Port) + " (Global Catalogs from DNS SRV)"
	}
	return scheme + "://" + e.Addr()
}

// URLFix is what to write instead of an unusable cert.mapping.ldap.url.
const URLFix = "write ldap[s]://host[:port][/baseDN], for example ldaps://dc1.corp.example:3269/dc=corp,dc=example, or ldaps:/// to find the Global Catalogs in DNS"

// DiscoveryTLSFix is what to write instead of a plain LDAP URL without a
// host (ldap:///): config check and the identity role say it alike.
const DiscoveryTLSFix = "write ldaps:/// (the Global Catalogs over TLS, port 3269), set segmesh.identity.ldapStartTls, or write the directory's host in the URL"

// URLError says why cert.mapping.ldap.url cannot be used; config check and
// the identity role report it with the same words.
type URLError struct {
	// Raw is the URL as written, a password in its user information
	// (ldap://user:password@host, refused) replaced by xxxxx: config check,
	// /status and the log show it.
	Raw string
	// Reason says what is wrong ("has a query ('?...')...").
	Reason string
}

// Error names the setting, the value, the reason and the fix.
func (e *URLError) Error() string {
	return fmt.Sprintf("certmap: cert.mapping.ldap.url %q %s; %s", e.Raw, e.Reason, URLFix)
}

// ParseURL parses cert.mapping.ldap.url: ldap:// or ldaps://, a host, an
// optional port (any, including the Global Catalog's 3268 and 3269) and an
// optional base DN as the path (ldaps://dc1.corp.example:3269/dc=corp,dc=example),
// URL-decoded. Without a host (ldaps:///, ldaps://:3269/dc=corp,dc=example)
// the Global Catalogs are found by DNS SRV: Discover is set and the port
// defaults to 3269 (ldaps) or 3268 (ldap). RFC 4516's attributes, scope, filter and extensions (after
// '?') are refused: segmesh decides what it searches for.
func ParseURL(raw string) (Endpoint, error) {
	bad := func(reason string) (Endpoint, error) {
		return Endpoint{}, &URLError{Raw: redactUserinfo(raw), Reason: reason}
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // without the URL, which may carry a password
		}
		return bad("does not parse: " + err.Error())
	}
	var ep Endpoint
	switch strings.ToLower(u.Scheme) {
	case "ldap":
		ep.Port = 389
	case "ldaps":
		ep.TLS, ep.Port = true, 636
	default:
		return bad("is not an ldap:// or ldaps:// URL")
	}
	switch {
	case u.Opaque != "":
		return bad("has no //host")
	case u.User != nil:
		return bad("carries a user name; set cert.mapping.ldap.user instead")
	case u.RawQuery != "" || u.ForceQuery:
		return bad("has a query ('?...'); only a base DN may follow the host")
	case u.Fragment != "":
		return bad("has a fragment ('#...')")
	}
	ep.Host = u.Hostname()
	if ep.Host == "" {
		if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(raw)), strings.ToLower(u.Scheme)+"://") {
			return bad("has no //host")
		}
		ep.Discover = true
		ep.Port = portGC
		if ep.TLS {
			ep.Port = portGCTLS
		}
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("has an invalid port")
		}
		ep.Port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("has an empty port")
	}
	dn := strings.TrimPrefix(u.Path, "/") // url.Parse has already decoded %xx
	if strings.TrimSpace(dn) != "" {
		if _, err := ldap.ParseDN(dn); err != nil {
			return bad(fmt.Sprintf("has a path %q that is not a distinguished name", dn))
		}
		ep.BaseDN = dn
	}
	return ep, nil
}

// redactUserinfo returns raw with the password of its user information
// (ldap://user:password@host) replaced by xxxxx, as url.URL.Redacted does,
// also for a URL that does not parse.
func redactUserinfo(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	start, end := i+3, len(raw)
	if j := strings.IndexAny(raw[start:], "/?#"); j >= 0 {
		end = start + j
	}
	at := strings.LastIndex(raw[start:end], "@")
	if at < 0 {
		return raw
	}
	colon := strings.Index(raw[start:start+at], ":")
	if colon < 0 {
		return raw
	}
	return raw[:start+colon+1] + "xxxxx" + raw[start+at:]
}
