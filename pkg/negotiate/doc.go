// Package negotiate builds HTTP "Authorization: Negotiate" headers (SPNEGO
// NegTokenInit carrying a Kerberos AP-REQ, RFC 4178, RFC 4121, RFC 4559) from
// a service ticket and its session key, fast enough to make a fresh one for
// every proxied request.
//
// It serves step 5 of the request path: the edge holds a ticket per user and
// needs a new authenticator (new timestamp, new sequence number) per request
// because Exchange keeps a replay cache. gokrb5's spnego.NewNegTokenInitKRB5
// costs ~90 µs and ~800 allocations per token; a Builder encodes the ticket
// and the SPNEGO/GSS framing once, derives the encryption keys once, and per
// token only encodes and encrypts the small authenticator and splices it in.
package negotiate
