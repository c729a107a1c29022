// Package krbhint is the one catalogue of Kerberos error codes as a KCD
// gateway meets them: for each code its RFC 4120 name, what it means for
// the gateway, the administrator's fix (per stage of ticket issuance where
// the cause differs), whether retrying may help, and the class of failure a
// caller maps to its own status.
//
// pkg/s4u puts the catalogue's fix into every KDCError it returns, the
// ticket role maps a class to a gRPC code, diagnose fills the fix with the
// configured SPN and service account, and the admin status page names the
// codes it counts. No other package describes a Kerberos error code: a test
// of this package reads the module's sources and refuses code-name tables
// and switches over codes that return text anywhere else.
//
// gokrb5's iana/errorcode gives the RFC names (errorcode.Lookup); it holds no
// advice, so the advice is written here.
package krbhint
