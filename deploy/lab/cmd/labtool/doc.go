// Command labtool is the lab's helper program, built by deploy/lab/lab.sh at
// `up` and kept under $SEGMESH_LAB_DIR/bin. It is not part of segmesh: it
// stands in for the parts of a Windows estate the lab needs and that have no
// quick command-line equivalent.
//
// Subcommands:
//
//	pki     create (or complete) the lab PKI: device CAs, a server CA, device
//	        and server certificates as PEM and PFX, and one CRL per CA
//	crl     re-issue every CA's CRL from its revocation list
//	revoke  revoke a certificate and re-issue its issuer's CRL
//	ldif    print the LDIF for the lab's accounts (one batch for ldbadd)
//	fwd     forward TCP and UDP ports (the KDC and LDAP fault switches)
//	serve   serve a directory over HTTP (the CRL distribution point)
//
// When run as a CGI program (GATEWAY_INTERFACE set) it answers as the
// Exchange stand-in's echo endpoint: a JSON document describing what arrived.
package main
