// Package krbfast holds what both ends of Kerberos FAST (RFC 6113) share:
// the pseudo-random function of RFC 3961 (PRF, PRF+), KRB-FX-CF2, and the
// FAST messages (KrbFastArmoredReq, KrbFastReq, KrbFastResponse,
// KrbFastFinished) with their wire helpers. pkg/s4u armours the service
// account's AS exchange with it and pkg/kdc/kdctest answers armoured
// requests with it.
//
// gokrb5 has no FAST: no PRF, no CF2 and none of these messages; it has the
// RFC 3961 key derivation the AES PRF is built on, the checksum and
// encryption functions and the key usage numbers, which are used here.
// CF2 is checked against MIT krb5's t_cf2 vectors.
package krbfast
