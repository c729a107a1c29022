// Package fetch downloads CRLs from HTTP(S) distribution points for the crl
// role (step 2 of the request path): bounded in time and size, conditional
// (ETag / If-Modified-Since, a 304 keeps the CRL in force), http and https
// only. It returns the body as received; parsing and verification are
// package crl's.
package fetch
