package main

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// upnOf returns the UPN otherName of a certificate, "" if none.
func upnOf(t *testing.T, c *x509.Certificate) string {
	t.Helper()
	for _, e := range c.Extensions {
		if !e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) {
			continue
		}
		var names []asn1.RawValue
		if _, err := asn1.Unmarshal(e.Value, &names); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if n.Tag != 0 || n.Class != asn1.ClassContextSpecific {
				continue
			}
			var oid asn1.ObjectIdentifier
			rest, err := asn1.Unmarshal(n.Bytes, &oid)
			if err != nil || !oid.Equal(oidUPN()) {
				continue
			}
			var wrapped asn1.RawValue
			if _, err := asn1.Unmarshal(rest, &wrapped); err != nil {
				t.Fatal(err)
			}
			var s string
			if _, err := asn1.UnmarshalWithParams(wrapped.Bytes, &s, "utf8"); err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	return ""
}

func TestPKI(t *testing.T) {
	dir := t.TempDir()
	p := &pki{dir: dir, now: time.Now, pfxPassword: "pw", log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := p.build(2); err != nil {
		t.Fatal(err)
	}
	load := func(name string) *x509.Certificate {
		c, err := readCert(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(load("ca/root.pem"))
	roots.AddCert(load("ca/ca2.pem"))
	inters.AddCert(load("ca/inter.pem"))
	t.Run("device certificates", func(t *testing.T) {
		tests := []struct {
			user, upn string
			valid     bool
		}{
			{"alice", "alice@lab.test", true}, {"bob", "", true}, {"carol", "carol.ext@LAB.TEST", true},
			{"mallory", "alice@lab.test", true}, {"user0002", "user0002@lab.test", true},
			{"alice-ca2", "alice@lab.test", true}, {"alice-ca3", "alice@lab.test", false},
			{"alice-expired", "alice@lab.test", false}, {"alice-notyet", "alice@lab.test", false},
			{"alice-wrongeku", "alice@lab.test", false},
		}
		for _, tt := range tests {
			t.Run(tt.user, func(t *testing.T) {
				c := load("users/" + tt.user + "/cert.pem")
				if got := upnOf(t, c); got != tt.upn {
					t.Errorf("UPN %q, want %q", got, tt.upn)
				}
				_, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters,
					KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
				if (err == nil) != tt.valid {
					t.Errorf("Verify: %v, want valid=%v", err, tt.valid)
				}
			})
		}
	})
	t.Run("revoke", func(t *testing.T) {
		serial, ca, err := p.revoke(filepath.Join(dir, "users/user0001/cert.pem"))
		if err != nil || ca != "inter" {
			t.Fatalf("revoke: %q %q %v", serial, ca, err)
		}
		der, err := os.ReadFile(filepath.Join(dir, "crl/inter.crl"))
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.CheckSignatureFrom(load("ca/inter.pem")); err != nil {
			t.Fatal(err)
		}
		var listed []string
		for _, e := range crl.RevokedCertificateEntries {
			listed = append(listed, e.SerialNumber.Text(16))
		}
		for _, want := range []string{serial, load("users/alice-revoked/cert.pem").SerialNumber.Text(16)} {
			if !strings.Contains(strings.Join(listed, " "), want) {
				t.Errorf("CRL lists %v, not %s", listed, want)
			}
		}
	})
	t.Run("ldif", func(t *testing.T) {
		var b bytes.Buffer
		err := writeLDIF(&b, ldifOptions{pkiDir: dir, named: true, from: 1, to: 2,
			userPassword: "u", svcPassword: "s", machinePassword: "m"})
		if err != nil {
			t.Fatal(err)
		}
		entries := strings.Split(strings.TrimSpace(b.String()), "\n\n")
		byDN := map[string]string{}
		for _, e := range entries {
			dn, _, _ := strings.Cut(e, "\n")
			byDN[dn] = e
		}
		for dn, wants := range map[string][]string{
			"dn: CN=svc_seg,CN=Users,DC=lab,DC=test": {"userAccountControl: 16843264",
				"msDS-AllowedToDelegateTo: HTTP/exchange.lab.test", "msDS-SupportedEncryptionTypes: 24", "unicodePwd:: "},
			"dn: CN=exchange,CN=Computers,DC=lab,DC=test": {"sAMAccountName: exchange$", "msDS-SupportedEncryptionTypes: 24"},
			"dn: CN=bob,CN=Users,DC=lab,DC=test":          {"userPrincipalName: bob.smith@lab.test", "userCertificate:: "},
			"dn: CN=carol,CN=Users,DC=lab,DC=test":        {"altSecurityIdentities: Kerberos:carol.ext@LAB.TEST"},
			"dn: CN=user0002,CN=Users,DC=lab,DC=test":     {"userAccountControl: 66080", "userCertificate:: "},
		} {
			for _, w := range wants {
				if !strings.Contains(byDN[dn], w) {
					t.Errorf("%s lacks %q:\n%s", dn, w, byDN[dn])
				}
			}
		}
		if strings.Contains(byDN["dn: CN=user0002,CN=Users,DC=lab,DC=test"], "unicodePwd") {
			t.Error("generated user has a password")
		}
	})
	t.Run("variants", func(t *testing.T) {
		var b bytes.Buffer
		err := writeLDIF(&b, ldifOptions{pkiDir: dir, named: true, from: 1, to: 2, variants: true,
			userPassword: "u", svcPassword: "s", machinePassword: "m"})
		if err != nil {
			t.Fatal(err)
		}
		entries := strings.Split(strings.TrimSpace(b.String()), "\n\n")
		byDN := map[string]string{}
		for _, e := range entries {
			dn, _, _ := strings.Cut(e, "\n")
			byDN[dn] = e
		}
		if len(byDN) != 4 {
			t.Fatalf("%d entries, want the 4 variants only:\n%s", len(byDN), b.String())
		}
		tests := []struct {
			dn        string
			want, not []string
		}{
			// 66048 = NORMAL_ACCOUNT|DONT_EXPIRE_PASSWD; +0x1000000 protocol transition.
			{"dn: CN=svc_rbcd,CN=Users,DC=lab,DC=test", []string{"userAccountControl: 16843264", "servicePrincipalName: HTTP/rbcd.lab.test", "unicodePwd:: "}, []string{"msDS-AllowedToDelegateTo"}},
			{"dn: CN=svc_nodeleg,CN=Users,DC=lab,DC=test", []string{"userAccountControl: 16843264"}, []string{"msDS-AllowedToDelegateTo"}},
			{"dn: CN=svc_konly,CN=Users,DC=lab,DC=test", []string{"userAccountControl: 66048", "msDS-AllowedToDelegateTo: HTTP/exchange.lab.test"}, nil},
			{"dn: CN=grace,CN=Users,DC=lab,DC=test", []string{"msDS-SupportedEncryptionTypes: 24", "userPrincipalName: grace@lab.test"}, []string{"servicePrincipalName"}},
		}
		for _, tt := range tests {
			for _, w := range tt.want {
				if !strings.Contains(byDN[tt.dn], w) {
					t.Errorf("%s lacks %q:\n%s", tt.dn, w, byDN[tt.dn])
				}
			}
			for _, w := range tt.not {
				if strings.Contains(byDN[tt.dn], w) {
					t.Errorf("%s has %q:\n%s", tt.dn, w, byDN[tt.dn])
				}
			}
		}
	})
	t.Run("policy", func(t *testing.T) {
		var b bytes.Buffer
		err := writeLDIF(&b, ldifOptions{pkiDir: dir, named: true, from: 1, to: 2, policy: true,
			userPassword: "u", svcPassword: "s", machinePassword: "m"})
		if err != nil {
			t.Fatal(err)
		}
		byDN := map[string]string{}
		for _, e := range strings.Split(strings.TrimSpace(b.String()), "\n\n") {
			dn, _, _ := strings.Cut(e, "\n")
			byDN[dn] = e
		}
		if len(byDN) != 3 {
			t.Fatalf("%d entries, want the 3 policy accounts only:\n%s", len(byDN), b.String())
		}
		tests := []struct {
			dn   string
			want []string
		}{
			{"dn: CN=svc_denied,CN=Users,DC=lab,DC=test", []string{"userAccountControl: 16843264", "msDS-AllowedToDelegateTo: HTTP/exchange.lab.test", "unicodePwd:: " + unicodePwd("s")}},
			{"dn: CN=svc_armor,CN=Users,DC=lab,DC=test", []string{"userAccountControl: 16843264", "msDS-AllowedToDelegateTo: HTTP/exchange.lab.test", "msDS-SupportedEncryptionTypes: 24"}},
			{"dn: CN=seggw,CN=Computers,DC=lab,DC=test", []string{"sAMAccountName: seggw$", "userAccountControl: 4096", "unicodePwd:: " + unicodePwd("m")}},
		}
		for _, tt := range tests {
			for _, w := range tt.want {
				if !strings.Contains(byDN[tt.dn], w) {
					t.Errorf("%s lacks %q:\n%s", tt.dn, w, byDN[tt.dn])
				}
			}
		}
	})
}

func TestUnicodePwd(t *testing.T) {
	// "a" quoted, UTF-16LE: 22 00 61 00 22 00.
	if got, want := unicodePwd("a"), "IgBhACIA"; got != want {
		t.Errorf("unicodePwd(a) = %s, want %s", got, want)
	}
}
