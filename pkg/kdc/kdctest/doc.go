// Package kdctest is a fake KDC for tests: it speaks real Kerberos (gokrb5
// types, real keys derived from known passwords) over loopback TCP, answers
// AS-REQ with pre-authentication, cross-realm TGS-REQ, S4U2Self and
// S4U2Proxy, checks the PA-FOR-USER and body checksums, counts exchanges by
// kind, records requests, and can be told to fail or to return a ticket for
// the wrong client (the silent S4U fallback of real KDCs).
//
// It is for tests only; nothing in production imports it.
package kdctest
