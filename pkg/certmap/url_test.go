package certmap

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in      string
		want    Endpoint
		gc      bool
		wantErr string
	}{
		{in: "ldap://dc1.lab.test", want: Endpoint{Host: "dc1.lab.test", Port: 389}},
		{in: "ldaps://dc1.lab.test", want: Endpoint{Host: "dc1.lab.test", Port: 636, TLS: true}},
		{in: "LDAPS://DC1.lab.test:636", want: Endpoint{Host: "DC1.lab.test", Port: 636, TLS: true}},
		{in: "ldap://ldap-remote:3268", want: Endpoint{Host: "ldap-remote", Port: 3268}, gc: true},
		{in: "ldaps://ldap-remote:3269", want: Endpoint{Host: "ldap-remote", Port: 3269, TLS: true}, gc: true},
		{in: "ldaps://ldap-remote:3269/dc=memldap,dc=org", want: Endpoint{Host: "ldap-remote", Port: 3269, TLS: true, BaseDN: "dc=memldap,dc=org"}, gc: true},
		{in: "ldap://127.0.0.2:389/DC=lab,DC=test", want: Endpoint{Host: "127.0.0.2", Port: 389, BaseDN: "DC=lab,DC=test"}},
		{in: "ldap://[::1]:10389/", want: Endpoint{Host: "::1", Port: 10389}},
		{in: "ldap://h/OU=Mobile%20Users,DC=lab,DC=test", want: Endpoint{Host: "h", Port: 389, BaseDN: "OU=Mobile Users,DC=lab,DC=test"}},
		{in: "ldap://h/OU=Sales%5C%2C%20EMEA,DC=lab,DC=test", want: Endpoint{Host: "h", Port: 389, BaseDN: `OU=Sales\, EMEA,DC=lab,DC=test`}},
		{in: "ldap://h/OU=Sales%2C%20EMEA,DC=lab,DC=test", wantErr: "not a distinguished name"}, // the comma needs its DN escape
		{in: " ldaps://h:3269 ", want: Endpoint{Host: "h", Port: 3269, TLS: true}, gc: true},
		{in: "", wantErr: "not an ldap"},
		{in: "http://dc1:389", wantErr: "not an ldap"},
		{in: "dc1.lab.test:389", wantErr: "not an ldap"},
		{in: "ldap:dc1", wantErr: "no //host"},
		// Without a host the Global Catalogs are found in DNS (issue 23).
		{in: "ldap:///dc=lab,dc=test", want: Endpoint{Port: 3268, BaseDN: "dc=lab,dc=test", Discover: true}, gc: true},
		{in: "ldaps:///", want: Endpoint{Port: 3269, TLS: true, Discover: true}, gc: true},
		{in: "ldaps://:636", want: Endpoint{Port: 636, TLS: true, Discover: true}},
		{in: "ldap://dc1:0", wantErr: "invalid port"},
		{in: "ldap://dc1:70000", wantErr: "invalid port"},
		{in: "ldap://dc1:", wantErr: "empty port"},
		{in: "ldap://user:pw@dc1", wantErr: "user name"},
		{in: "ldap://dc1/dc=lab??sub?(uid=x)", wantErr: "query"},
		{in: "ldap://dc1/dc=lab#x", wantErr: "fragment"},
		{in: "ldap://dc1/not-a-dn", wantErr: "not a distinguished name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseURL(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "certmap: cert.mapping.ldap.url") {
					t.Fatalf("ParseURL(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseURL(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if got.GlobalCatalog() != tt.gc {
				t.Errorf("GlobalCatalog() = %v, want %v", got.GlobalCatalog(), tt.gc)
			}
		})
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"ldaps://h:3269/dc=a,dc=b", "ldap://[::1]:1/", "ldap://h/%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ep, err := ParseURL(s)
		if err != nil {
			return
		}
		if ep.Host == "" && !ep.Discover || ep.Port < 1 || ep.Port > 65535 {
			t.Fatalf("ParseURL(%q) = %+v", s, ep)
		}
	})
}
