package trust

import (
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpki"
)

func TestVerifyClientChain(t *testing.T) {
	root := newCA(t, "Root CA")
	inter := root.Intermediate(t, "Issuing CA")
	expiredInter := root.Intermediate(t, "Old Issuing CA", testpki.NotBefore(testNow.AddDate(0, 0, -30)), testpki.NotAfter(testNow.Add(-time.Hour)))
	other := newCA(t, "Other CA")
	notCA := root.Issue(t, "Not a CA")
	base := t.TempDir()
	writeFile(t, filepath.Join(base, "root.pem"), pemOf(root))
	store, err := load(Spec{TrustStorePath: "root.pem", BaseDir: base}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := load(Spec{}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	good := inter.Device(t, "alice")
	direct := root.Device(t, "bob")
	noEKU := inter.Issue(t, "carol")
	serverOnly := inter.Issue(t, "dave", testpki.EKU(x509.ExtKeyUsageServerAuth))
	expired := inter.Issue(t, "erin", testpki.NotBefore(testNow.AddDate(0, 0, -30)), testpki.NotAfter(testNow.Add(-time.Minute)))
	early := inter.Issue(t, "frank", testpki.NotBefore(testNow.Add(time.Minute)))
	underExpired := expiredInter.Device(t, "grace")
	stranger := other.Device(t, "mallory")
	underNotCA := notCA.Device(t, "heidi")

	tests := []struct {
		name    string
		store   *Store
		chain   []*x509.Certificate
		at      time.Time
		reason  Reason
		culprit *testpki.Cert
		msg     string
	}{
		{"leaf and intermediate", store, chainOf(good, inter), testNow, -1, nil, ""},
		{"leaf issued by the root", store, chainOf(direct), testNow, -1, nil, ""},
		{"leaf without EKU", store, chainOf(noEKU, inter), testNow, -1, nil, ""},
		{"renewed CA with the same name", store, chainOf(newCA(t, "Root CA").Device(t, "ivan")), testNow, ReasonUnknownAuthority, nil, "possibly because"},
		{"intermediate not sent", store, chainOf(good), testNow, ReasonUnknownAuthority, good, "does not chain to a CA in PEM files root.pem"},
		{"unknown CA", store, chainOf(stranger, other), testNow, ReasonUnknownAuthority, other, `issuer "CN=Other CA`},
		{"expired leaf", store, chainOf(expired, inter), testNow, ReasonExpired, expired, "expired on"},
		{"leaf expired later", store, chainOf(good, inter), testNow.Add(2 * 365 * 24 * time.Hour), ReasonExpired, good, "expired on"},
		{"leaf not yet valid", store, chainOf(early, inter), testNow, ReasonNotYetValid, early, "is not valid before"},
		{"expired intermediate", store, chainOf(underExpired, expiredInter), testNow, ReasonExpired, expiredInter, `"CN=Old Issuing CA`},
		{"server-only EKU", store, chainOf(serverOnly, inter), testNow, ReasonWrongUsage, serverOnly, "not allowed for client authentication"},
		{"issuer is not a CA", store, chainOf(underNotCA, notCA), testNow, ReasonNotAuthorizedToSign, notCA, "is not a CA"},
		{"no certificate", store, nil, testNow, ReasonNoCertificate, nil, "presented no client certificate"},
		{"empty store", empty, chainOf(good, inter), testNow, ReasonNoTrust, nil, "no trust store holds no CA"},
		{"nil store", nil, chainOf(good, inter), testNow, ReasonNoTrust, nil, "no client certificate is trusted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chains, err := VerifyClientChain(tt.store, tt.chain, tt.at)
			if tt.reason == -1 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				last := chains[0][len(chains[0])-1]
				if !last.Equal(root.Cert) {
					t.Fatalf("chain ends in %s, want the root", last.Subject)
				}
				return
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v (%T), want *VerifyError", err, err)
			}
			if ve.Reason != tt.reason {
				t.Errorf("reason %v, want %v (%v)", ve.Reason, tt.reason, err)
			}
			if tt.culprit != nil && (ve.Cert == nil || !ve.Cert.Equal(tt.culprit.Cert)) {
				t.Errorf("cert at fault %v, want %s", ve.Cert, tt.culprit.Cert.Subject)
			}
			if !strings.HasPrefix(err.Error(), "trust: ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q, want it to contain %q", err, tt.msg)
			}
			if chains != nil {
				t.Errorf("chains returned with an error")
			}
		})
	}
}

func TestReasonString(t *testing.T) {
	seen := map[string]bool{}
	for r := ReasonOther; r <= ReasonNotAuthorizedToSign; r++ {
		s := r.String()
		if s == "" || seen[s] || strings.ContainsAny(s, " -") {
			t.Errorf("Reason(%d).String() = %q: empty, repeated or not a label", r, s)
		}
		seen[s] = true
	}
}

func TestKindString(t *testing.T) {
	want := map[Kind]string{KindNone: "none", KindPEM: "PEM", KindPFX: "PFX", KindConsole: "console", Kind(9): "Kind(9)"}
	for k, w := range want {
		if k.String() != w {
			t.Errorf("%d.String() = %q, want %q", int(k), k.String(), w)
		}
	}
}
