// Package security holds issue 12's hostile-input and secrets tests against
// the lab: certificates a device should not get through with (none,
// untrusted, expired, not yet valid, wrong EKU, a foreign realm, two UPNs,
// LDAP filter metacharacters and NUL bytes), device credentials that must
// never reach Exchange, oversized headers, slowloris, a handshake flood,
// and a whole e2e run whose every output is searched for secrets. Every
// test is behind the `lab` build tag: go test -tags lab ./test/security/
package security
