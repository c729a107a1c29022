// Package crl owns certificate revocation for step 2 of the request path:
// parsing and verifying X.509 CRLs, and the per-issuer revocation indexes the
// edge consults for every client certificate without a lock or an RPC.
//
// A CRL moves through three stages:
//
//   - [Parse] decodes a DER or PEM CRL. The header goes through
//     crypto/x509.ParseRevocationList; the revoked entries are walked in place
//     and stored straight into a compact hash index (about 50 bytes per entry)
//     instead of the several hundred bytes per entry x509.RevocationList holds.
//   - [CRL.Verify] checks the signature against the caller's trusted CA
//     certificates, matched by issuer name and authority key identifier.
//   - [CRL.Index] names the result: an immutable [Index] for one issuer.
//
// A [Snapshot] groups the indexes of all issuers under a version number, and a
// [Set] holds the current snapshot behind an atomic pointer, so a refresh
// swaps it while lookups go on.
//
// Fetching over HTTP lives in crl/fetch, the on-disk copy of the last good
// CRLs in crl/store, and the timer that ties them together in crl/refresh.
//
// Not supported, and refused with [KindUnsupported]: delta CRLs (the base CRL
// must be configured) and indirect CRLs (entries naming another issuer).
package crl
