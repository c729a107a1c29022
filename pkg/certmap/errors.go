package certmap

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Hints an administrator acts on, shared by the errors below.
const (
	hintPublish = "publish the certificate to the user's userCertificate"
	hintIndex   = "index userCertificate and replicate it to the Global Catalog"
	hintBind    = "check cert.mapping.ldap.user is a DN and the KCD service account password"
)

// ErrNotFound matches (errors.Is) a *NotFoundError: no directory user holds
// the certificate. The caller falls back to the certificate's SAN UPN.
var ErrNotFound = errors.New("certmap: no user holds the certificate in userCertificate")

// NotFoundError is returned when no user's userCertificate equals the
// certificate.
type NotFoundError struct {
	// BaseDN is the base the search ran under.
	BaseDN string
	// GlobalCatalog reports whether the search ran against a Global Catalog.
	GlobalCatalog bool
	// UPN is the name MapUPN looked for; empty for a certificate search.
	UPN string
}

// Error implements error.
func (e *NotFoundError) Error() string {
	where := "under " + quoteDN(e.BaseDN)
	if e.GlobalCatalog {
		where += " in the Global Catalog"
	}
	if e.UPN != "" {
		return fmt.Sprintf("certmap: no user %s has userPrincipalName %s or altSecurityIdentities Kerberos:%s", where, e.UPN, e.UPN)
	}
	return fmt.Sprintf("certmap: no user %s holds the certificate in userCertificate: %s; if it is published, %s",
		where, hintPublish, hintIndex)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// AmbiguousError is returned when several users hold the certificate, or
// (MapUPN) the same altSecurityIdentities name.
type AmbiguousError struct {
	// DNs are the users' distinguished names.
	DNs []string
	// UPN is set when MapUPN found several users with altSecurityIdentities
	// Kerberos:<UPN>; empty for a certificate search.
	UPN string
}

// Error implements error.
func (e *AmbiguousError) Error() string {
	if e.UPN != "" {
		return fmt.Sprintf("certmap: %d users hold altSecurityIdentities Kerberos:%s (%s): keep it on exactly one user",
			len(e.DNs), e.UPN, strings.Join(e.DNs, "; "))
	}
	return fmt.Sprintf("certmap: %d users hold the certificate in userCertificate (%s): keep it on exactly one user",
		len(e.DNs), strings.Join(e.DNs, "; "))
}

// NoUPNError is returned when the user holding the certificate has no
// userPrincipalName.
type NoUPNError struct {
	// DN is the user's distinguished name.
	DN string
}

// Error implements error.
func (e *NoUPNError) Error() string {
	return fmt.Sprintf("certmap: user %s holds the certificate but has no userPrincipalName: set the user's UPN", e.DN)
}

// BindError is returned when the directory refuses the service account's bind.
type BindError struct {
	// BindDN is cert.mapping.ldap.user.
	BindDN string
	// Code is the LDAP result code, 0 when the bind never got an answer.
	Code uint16
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *BindError) Error() string {
	hint := hintBind
	if e.Code == ldap.LDAPResultStrongAuthRequired || e.Code == ldap.LDAPResultConfidentialityRequired {
		hint = "the directory refuses a simple bind without TLS: use ldaps:// or StartTLS"
	}
	return fmt.Sprintf("certmap: bind as %s: %v: %s", e.BindDN, e.Err, hint)
}

// Unwrap returns the underlying error.
func (e *BindError) Unwrap() error { return e.Err }

// CredentialsRefused reports whether the directory refused the account or
// its password (LDAP 49, invalid credentials: AD's wrong password, unknown,
// disabled, expired or locked account): a definitive answer, where trying
// the same credentials again counts towards the account's lockout.
func (e *BindError) CredentialsRefused() bool { return e.Code == ldap.LDAPResultInvalidCredentials }

// DirectoryError is returned when the directory cannot be reached or fails
// an operation other than the bind. The mapping has no answer: the caller
// must not treat it as "not found".
type DirectoryError struct {
	// Op is what was being done: "dial", "starttls", "read rootDSE", "search".
	Op string
	// Endpoint is the directory, as ldap[s]://host:port.
	Endpoint string
	// Hint says what to check; may be empty.
	Hint string
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *DirectoryError) Error() string {
	s := fmt.Sprintf("certmap: %s %s: %v", e.Op, e.Endpoint, e.Err)
	if e.Hint != "" {
		s += ": " + e.Hint
	}
	return s
}

// Unwrap returns the underlying error.
func (e *DirectoryError) Unwrap() error { return e.Err }

func quoteDN(dn string) string {
	if dn == "" {
		return "the directory root"
	}
	return dn
}
