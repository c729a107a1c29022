// Package refusal remembers a server's definitive refusal of a set of
// credentials (a KDC refusing the service account's pre-authentication, a
// directory answering LDAP 49 to the bind) so that a reload does not
// present them again for a while. Every failed attempt counts towards the
// account's lockout (AD's badPwdCount), and segmesh run reloads a file
// twice when it encrypts a ".plaintext" secret in it: a mistyped password
// must cost one failure, not one per reload. The ticket role (its proving
// AS exchange) and the identity role (its proving bind) share it; they are
// two roles that may not import each other.
//
// The credentials are remembered as an HMAC-SHA256 digest under a key
// drawn for each Memory, never in clear and never as a plain hash that
// could be compared with a guessed password's outside the process.
package refusal
