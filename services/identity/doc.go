// Package identity is the identity role (step 3 of the request path): it
// turns the client certificate a device presented into the user Kerberos
// will impersonate. With certificate mapping on (cert.mapping.enabled, which
// SEG considers false while KCD is off) it asks the directory for the user
// whose userCertificate holds the certificate (pkg/certmap: LDAP pool,
// cache by SHA-256); when none does, it falls back to the UPN in the
// certificate's SAN (pkg/upn), and matches the UPN's suffix to a configured
// realm. It serves segmesh.identity.v1.IdentityService; refusals carry the
// reason an administrator acts on.
package identity
