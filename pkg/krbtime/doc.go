// Package krbtime hands out Kerberos authenticator timestamps (ctime and
// cusec, RFC 4120 section 5.5.1) that strictly increase.
//
// An acceptor's replay cache (IIS for Exchange, a KDC for TGS-REQs) refuses
// a second authenticator of one ticket with the same client time and
// microsecond, so two requests built in the same microsecond, or after the
// clock stepped back, must not share one. MIT krb5 does the same in
// krb5_us_timeofday's callers (k5_time_with_offset plus the "last time"
// bump in lib/krb5/os/c_ustime.c): when the clock repeats or goes back, the
// microsecond of the last time handed out is moved on by one.
//
// It serves step 5 of the request path (pkg/negotiate's per-request
// authenticator) and the ticket role's TGS-REQs (pkg/s4u). It is written
// here because gokrb5 takes the time straight from the clock.
package krbtime
