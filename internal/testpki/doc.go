// Package testpki mints the certificates tests need: root and intermediate
// CAs, device certificates carrying a UPN in a subject alternative name
// otherName (as AD CS issues them and pkg/upn reads them), server
// certificates, CRLs, and their PEM, key and tls.Certificate forms. It serves
// no step of the request path; it stands in for the customer's PKI in tests
// of every step that reads a certificate.
//
// Every function takes a testing.TB and ends the test with t.Fatal on error,
// so a test reads as its PKI:
//
//	root := testpki.NewCA(t, "Lab Root CA")
//	inter := root.Intermediate(t, "Lab Issuing CA")
//	alice := inter.Device(t, "alice", testpki.UPN("alice@lab.test"))
//	crl := inter.CRL(t, testpki.CRLOptions{ThisUpdate: now,
//		Revoked: []testpki.Revoked{{Serial: alice.Cert.SerialNumber, At: now}}})
//
// Keys are ECDSA P-256 and serial numbers random unless an Option says
// otherwise. Validity runs from an hour before a base time (time.Now, or At)
// to ten years after it for CAs and a year after it for other certificates;
// a certificate's base time defaults to its issuer's. Nothing here is meant
// for production.
package testpki
