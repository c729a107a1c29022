// Package kdc sends Kerberos requests to the KDCs of a realm: TCP with the
// 4-byte length prefix of RFC 4120 section 7.2.2 (UDP first only when enabled
// and the request is small), context deadlines, failover across the KDCs
// configured for the realm in order, and a per-realm limit on concurrent
// exchanges.
//
// It serves step 4 of the request path (the ticket role's S4U exchanges).
// The package knows nothing about S4U: it moves opaque request bytes and
// hands back the reply bytes, or a *KRBError when the KDC answered with a
// KRB-ERROR (a reply whose first byte is 0x7e), or an *UnreachableError when
// no KDC of the realm answered.
package kdc
