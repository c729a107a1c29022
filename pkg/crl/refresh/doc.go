// Package refresh keeps the CRLs of the configured distribution points
// current for the crl role (step 2 of the request path): it loads the last
// good copies from disk, fetches every URL at start (failing hard when
// configured and a URL has no copy at all), then again on a timer with
// exponential backoff and jitter after failures, verifies each CRL, refuses
// older ones, marks expired ones stale, and publishes versioned snapshots to
// subscribers and to a [crl.Set].
package refresh
