// Package testenv is a whole segmesh site in one test process, with nothing
// but Go: the four real roles (internal/suite, the code `segmesh run` runs)
// against fakes that speak the real wire — a KDC (pkg/kdc/kdctest), a
// directory (pkg/certmap/ldaptest), a CRL distribution point (an
// httptest server serving a CRL minted by internal/testpki) — and an
// Exchange stand-in that verifies each Negotiate header with the target's
// keytab (gokrb5's SPNEGO acceptor, as the benchmarks' negbackend does) and
// reports the user it authenticated.
//
// Start runs the roles all in one process (Mode AllInOne) or as four
// processes' worth of suite.Run, each with its own configuration, talking
// gRPC over loopback with mTLS and the peer allow-list on (Mode Split), so
// the end-to-end tables run in both shapes under plain `go test`, in the
// manner of Pomerium's testenv. The lab tests (-tags lab) stay for what only
// Samba and Apache can prove.
package testenv
