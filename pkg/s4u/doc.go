// Package s4u obtains Kerberos service tickets on behalf of users through
// Microsoft's Services for User extensions (MS-SFU): protocol transition
// (S4U2Self) followed by constrained delegation (S4U2Proxy), built on
// gokrb5's messages, types and crypto, which have no S4U of their own.
//
// It serves step 4 of the request path: the ticket role holds a Client with
// the KCD service account's password, and asks it for a ticket to the target
// SPN (HTTP/exchange...) for a user's UPN. The Client keeps a TGT per realm
// (AS exchange with encrypted-timestamp pre-authentication, forwardable and
// renewable, refreshed ahead of expiry by TGS renewal while the KDC allows
// it), renews tickets (Renew: RFC 4120's renew option, one TGS exchange
// instead of a new pair where the KDC renews service tickets; Samba's does
// not), follows referrals to the user's
// realm for users of other configured domains (MS-SFU 3.1.5.1.1.2), and
// refuses a reply whose client is not the user asked for: a KDC can silently
// return a ticket for the service account instead.
//
// KDC failures come back as *KDCError with the stage, the Kerberos code and
// a hint in an administrator's words; an unreachable realm as
// *UnreachableError. Neither carries secrets.
package s4u
