// Package crl is the crl role (step 2 of the request path): it fetches the
// CRLs of the configured HTTP distribution points
// (remote.crl.distribution.http.uris) at start — failing the start when
// fail.hard.on.crl.download.failure.during.server.startup is true and a
// distribution point has neither a download nor a stored copy — and then
// every remote.crl.fetch.interval.in.minutes, verifies them against the
// client-certificate trust store, keeps the last good ones on disk, and
// serves segmesh.crl.v1.RevocationService: a versioned snapshot stream every
// edge indexes locally, and a unary Check for tools and diagnose.
//
// The machinery lives in pkg/crl (parse, verify, index), pkg/crl/fetch,
// pkg/crl/store and pkg/crl/refresh; this package wires it to the
// configuration, telemetry and gRPC.
package crl
