package certmap

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// FuzzDirectoryUser feeds arbitrary attribute values of a directory user
// (the DN, userPrincipalName, altSecurityIdentities, objectSid: what the
// directory, or anyone on an unsigned LDAP path to it, sends) through the
// mapping, the strong-mapping match and the login name's domain. Nothing
// panics, and a value that binds one certificate never binds another of
// another issuer, serial and key.
func FuzzDirectoryUser(f *testing.F) {
	a := mintClient(f, "Device A", "alice@lab.test")
	b := mintClient(f, "Device B", "bob@lab.test")
	sid := []byte{1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0xf4, 0x01, 0, 0}
	for _, form := range StrongForms(a) {
		f.Add("CN=alice,CN=Users,DC=lab,DC=test", "alice@lab.test", form, sid)
	}
	f.Add("DC=a,DC=b", "x@y", "X509:<I>CN=Device A<SR>00", []byte{1, 0, 0, 0, 0, 0, 0, 0})
	f.Add("CN=\\", "", "X509:<", []byte{1, 0xff})
	f.Fuzz(func(t *testing.T, dn, upn, alt string, sid []byte) {
		e := ldap.NewEntry(dn, map[string][]string{
			"userPrincipalName": {upn}, "sAMAccountName": {"alice"},
			"altSecurityIdentities": {alt}, "objectSid": {string(sid)},
		})
		ans, err := mappingOf(e)
		if err != nil {
			t.Fatalf("mappingOf: %v", err)
		}
		m := ans.mapping
		if ans.err == nil && m.UPN != upn {
			t.Fatalf("mapped UPN %q, the entry has %q", m.UPN, upn)
		}
		_ = DomainOfDN(dn)
		m.ObjectSID = "" // neither test certificate carries a SID
		m.AltSecurityIdentities = []string{alt}
		formA, okA := StrongMatch(a, m)
		formB, okB := StrongMatch(b, m)
		if okA && okB {
			t.Fatalf("%q binds two certificates of other issuers, serials and keys (%q, %q)", alt, formA, formB)
		}
	})
}
