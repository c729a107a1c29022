// Package trust holds the trust store for device (client) certificates: the CA certificates
// the edge accepts in the mutual-TLS handshake (step 1 of the request path in DESIGN.md).
//
// The trust comes, as in SEG V2, from clientCertTrustStorePath: either a comma-separated
// list of PEM files (.pem, .cer, .crt) or exactly one password-protected PFX (.pfx, .p12,
// read by package pfx) whose password is clientCertTrustStorePasscode, never both. Only when
// no local trust store is configured is the client certificate chain uploaded in the console
// used; local trust takes precedence.
//
// Load builds an immutable Store; Validate runs the same checks without keeping anything,
// for `segmesh config check`. A Reloader holds the current Store in an atomic pointer and
// replaces it when the files change (polled) or on demand (SIGHUP); a broken file keeps the
// previous Store in use. VerifyClientChain checks a presented chain against a Store for
// client authentication and says why it fails; VerifyConnectionFunc wraps it for
// tls.Config.VerifyConnection. Each Store remembers the chains it accepted (verifycache.go),
// so a device that connects again, or resumes its TLS session, skips crypto/x509's
// signature checks while every certificate of its chain is still valid.
//
// A certificate in the trust store that is not a CA is a warning, not an error: Go, like
// Java's trust managers, treats every certificate in the store as a trust anchor, so such a
// certificate is accepted only when a device presents exactly that certificate. It is almost
// always an export mistake (the device's certificate instead of its issuer), so it is
// reported, but it does no harm to refuse nothing. Expired CA certificates are warnings too:
// keeping the old CA while moving to a renewed one is what the multi-CA trust store is for.
package trust
