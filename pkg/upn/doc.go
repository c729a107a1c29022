// Package upn owns the user principal name (UPN) as segmesh sees it: the UPN
// carried in a client certificate's subject alternative name (the otherName
// 1.3.6.1.4.1.311.20.2.3, a UTF8String, as Microsoft CAs issue it), and the
// parsing of a UPN into its user and suffix, matched to a configured Kerberos
// realm.
//
// It serves step 3 of the request path (DESIGN.md): when certificate mapping
// finds no user, or is off, the certificate's SAN UPN names the user the edge
// asks the ticket role to impersonate. A certificate with no UPN, or with
// several, is refused explicitly rather than guessed at.
package upn
