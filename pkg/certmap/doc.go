// Package certmap owns the LDAP certificate mapping: it finds the directory
// user whose userCertificate holds a device's client certificate and returns
// that user's userPrincipalName and distinguished name, as SEG's
// cert.mapping.* settings describe (cert.mapping.ldap.url, .user, .basedn).
//
// It serves step 3 of the request path (DESIGN.md). A Mapper binds as the
// KCD service account, searches with a filter that escapes every byte of the
// certificate, keeps a bounded pool of directory connections (reconnecting
// after network errors, every operation under a timeout) and caches answers
// by the certificate's SHA-256, with a shorter lifetime for misses.
//
// A Resolver applies SEG's precedence on top: the mapping first, then the
// UPN in the certificate's SAN (package upn) when the directory holds the
// certificate on no user, else a refusal that says what the administrator
// has to fix.
package certmap
