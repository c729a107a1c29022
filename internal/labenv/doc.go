// Package labenv brings up the segmesh lab (deploy/lab/lab.sh) for tests and
// describes it: the Samba AD DC and KDC on 127.0.0.2 (with forwarders on
// 127.0.0.5 for Kerberos and 127.0.0.6 for LDAP that act as fault switches),
// the Exchange stand-in on 127.0.0.3, the CRL distribution point on
// 127.0.0.4 and the lab PKI.
//
// Everything but this file is behind the `lab` build tag, so plain
// `go test ./...` never needs the lab:
//
//	func TestSomething(t *testing.T) {
//		lab := labenv.Up(t) // runs `lab.sh up` once per test binary
//		lab.Fault(t, "kdc", true) // turned off again by t.Cleanup
//		...
//	}
//
// Run with `go test -tags lab ./...` as root on Debian 12; the first run
// installs the packages the lab needs.
package labenv
