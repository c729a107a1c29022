package trust

import (
	"strings"
	"testing"
)

// FuzzParsePEMFile feeds the trust-store file parser arbitrary bytes. It must not panic, must
// report a problem whenever it returns no certificate, and every problem must name its key.
func FuzzParsePEMFile(f *testing.F) {
	ca := newCA(f, "CA")
	f.Add(pemOf(ca))
	f.Add(ca.Cert.Raw)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var ps problems
		certs := parsePEMFile(data, "f.pem", KeyPath, &ps)
		if len(certs) == 0 && len(ps.errors()) == 0 {
			t.Fatal("no certificate and no error")
		}
		for _, p := range ps {
			if p.Key != KeyPath || !strings.HasPrefix(p.Error(), "trust: ") {
				t.Fatalf("problem %q", p.Error())
			}
		}
	})
}

// FuzzSpecPlan checks the path-list rules on arbitrary values of clientCertTrustStorePath.
func FuzzSpecPlan(f *testing.F) {
	for _, s := range []string{"", "a.pem", "config/ssl-certs/CA01.pem, config/ssl-certs/CA02.pem", "a.pem,b.pfx", "a.pfx,b.p12", " , ", "x.der"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		var ps problems
		p := Spec{TrustStorePath: path, BaseDir: "/base"}.plan(&ps)
		if len(ps.errors()) > 0 {
			return
		}
		if len(p.paths) != len(p.entries) {
			t.Fatalf("%d paths for %d entries", len(p.paths), len(p.entries))
		}
		if (p.kind == KindPFX) != (len(p.paths) == 1 && hasExt(pfxExts, p.entries[0])) {
			t.Fatalf("kind %v for %q", p.kind, p.entries)
		}
		for _, e := range p.entries {
			if e == "" || e != strings.TrimSpace(e) || strings.Contains(e, ",") {
				t.Fatalf("entry %q not trimmed and split", e)
			}
		}
	})
}
