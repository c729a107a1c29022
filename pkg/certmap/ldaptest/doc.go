// Package ldaptest is a small in-process LDAP server for tests of the
// certificate mapping: it speaks the real wire protocol (BER over TCP on a
// loopback port, optionally LDAPS or StartTLS) and answers simple bind,
// search with equality/presence/and/or/not filters, the rootDSE, StartTLS
// and unbind. It is the one behavioural fake of the directory, shared by
// pkg/certmap and services/identity tests. It is not a directory server.
package ldaptest
