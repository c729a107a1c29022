package diagnose

import (
	"errors"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/crl"
)

// TestFixRevocationByCRLKind: each kind of CRL failure gets its own code
// and fix. A CRL whose fetch or check panicked (crl.KindPanic, which the
// crl role's status can hold) was shown as "malformed" with the advice to
// check what the URL serves: the CRL may be fine, it is segmesh that
// failed on it (this test failed on main: code crl_malformed).
func TestFixRevocationByCRLKind(t *testing.T) {
	const url = "http://pki.lab.test/CertEnroll/Lab%20CA.crl"
	tests := []struct {
		kind   crl.Kind
		code   string
		fixHas string
		fixNot string
	}{
		{crl.KindFetch, "cdp_unreachable", "over LDAP and not HTTP", ""},
		{crl.KindMalformed, "crl_malformed", "serves the CA's CRL", ""},
		{crl.KindSignature, "crl_untrusted", "not signed by a trusted CA", ""},
		{crl.KindUnsupported, "crl_unsupported", "base CRL", ""},
		{crl.KindPanic, "crl_panic", "segmesh's maintainers", "serves the CA's CRL"},
	}
	for _, tc := range tests {
		t.Run(tc.kind.String(), func(t *testing.T) {
			err := &crl.Error{URL: url, Kind: tc.kind, Err: errors.New("cause")}
			detail, fix, code := fixRevocation(nil, err)
			if code != tc.code || !strings.Contains(fix, tc.fixHas) || tc.fixNot != "" && strings.Contains(fix, tc.fixNot) {
				t.Fatalf("code %q fix %q, want code %q and a fix with %q (not %q)", code, fix, tc.code, tc.fixHas, tc.fixNot)
			}
			if !strings.Contains(detail, url) {
				t.Fatalf("detail %q does not name the URL", detail)
			}
		})
	}
}
