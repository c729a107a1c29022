// Package store keeps the last good CRL of every distribution point on disk
// for the crl role, so that a restart while a distribution point is down
// still enforces revocation (SEG cannot). Each URL gets two files in one
// directory, named by the SHA-256 of the URL: <name>.crl (the DER as
// verified) and <name>.json (URL, HTTP validators, fetch time, the DER's
// SHA-256). Both are written atomically (temporary file, fsync, rename,
// directory fsync). The store does not verify: the caller re-verifies what it
// loads.
package store
