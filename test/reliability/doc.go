// Package reliability holds issue 12's fault tests: segmesh (as a child
// process, or in this process where goroutines and descriptors are counted)
// against the lab while the KDC hangs, a DC is down, LDAP, the CDP or
// Exchange fail, the ticket role restarts, SIGTERM arrives under load, and
// config.json or the trust store is broken. Every test is behind the `lab`
// build tag: go test -tags lab ./test/reliability/
package reliability
