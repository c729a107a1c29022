// Package edge is the device-facing role: step 1, 2 and 5 of the request
// path in DESIGN.md, with steps 3 and 4 asked of the identity and ticket roles.
//
// It terminates mutual TLS (TLS 1.2/1.3; the server certificate from a PEM
// pair, a PFX, or self-signed when none is configured), verifies the device's
// client certificate against the trust store with the clientAuth EKU and
// checks it against the revocation snapshot streamed by the crl role. Trust
// is served through GetConfigForClient from an atomic snapshot and
// verification runs in VerifyConnection, which unlike VerifyPeerCertificate
// also runs on resumed sessions.
//
// For each request to a configured path (ActiveSync, EWS, Autodiscover) it
// maps the certificate to a user (identity role, cached per certificate),
// takes a service ticket for the Exchange SPN (ticket role, cached per user
// and SPN until shortly before expiry, one RPC for concurrent misses), builds
// a fresh SPNEGO Negotiate header with a new authenticator, strips whatever
// Authorization the device sent, and reverse-proxies to Exchange with
// streaming bodies and no total timeout, so an EAS Ping can hang for its full
// heartbeat. A 401 from Exchange invalidates the ticket and, for small
// bodies, retries once with a new one.
//
// The edge has no gRPC API: RegisterGRPC registers nothing. Failures reach the
// device as a plain status and the log as cause and fix; the mapping lives in
// errors.go.
package edge
