package negotiate_test

import (
	"crypto/md5" //nolint:gosec // the reference computation of the GSS channel-binding hash
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/negotiate"
	"github.com/segmesh/segmesh/pkg/negotiate/negotiatetest"
)

// TestTLSServerEndPointKnownAnswer computes the binding of RFC 5929 and RFC
// 4121 independently: MD5 over five little-endian 32-bit fields (no
// addresses) and "tls-server-end-point:" || SHA-256(cert DER).
func TestTLSServerEndPointKnownAnswer(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	cert := srv.Certificate()
	if cert.SignatureAlgorithm != x509.SHA256WithRSA && cert.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Skipf("httptest certificate signed with %v", cert.SignatureAlgorithm)
	}
	h := sha256.Sum256(cert.Raw)
	app := append([]byte("tls-server-end-point:"), h[:]...)
	buf := make([]byte, 16, 20+len(app))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(app)))
	want := md5.Sum(append(buf, app...)) //nolint:gosec // reference
	if got := negotiate.TLSServerEndPoint(cert); got != negotiate.Binding(want) {
		t.Fatalf("binding %x, want %x", got, want)
	}
}

// bindingFixture is a keytab for HTTP/exchange.lab.test and a ticket to it
// with a session key of one etype.
func bindingFixture(tb testing.TB, etype int32) (*keytab.Keytab, *negotiate.Builder) {
	tb.Helper()
	kt, b, _ := bindingFixtureKey(tb, etype)
	return kt, b
}

// bindingFixtureKey is bindingFixture that also returns the session key.
func bindingFixtureKey(tb testing.TB, etype int32) (*keytab.Keytab, *negotiate.Builder, types.EncryptionKey) {
	tb.Helper()
	tk := negotiatetest.NewTicket(tb, "HTTP/exchange.lab.test", "LAB.TEST", "Exch-Passw0rd!", "alice", etype)
	b, err := negotiate.New(tk.DER, tk.Key, tk.CName, tk.Realm, negotiate.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return tk.Keytab, b, tk.Key
}

// TestExtendedProtection: against the IIS stand-in over TLS, for every
// etype the Builder supports, a token bound to the server's certificate is
// accepted with Extended Protection Off, Accept and Require; an unbound
// token is refused with Require only; a token bound to another certificate
// is refused with Accept and Require.
func TestExtendedProtection(t *testing.T) {
	// httptest servers all present one certificate: bind to other data.
	wrong := negotiate.ChannelBindings([]byte("tls-server-end-point:another certificate"))
	for _, et := range []int32{etypeID.DES3_CBC_SHA1_KD, etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96,
		etypeID.AES128_CTS_HMAC_SHA256_128, etypeID.RC4_HMAC} {
		kt, b := bindingFixture(t, et)
		for _, ep := range []negotiatetest.ExtendedProtection{negotiatetest.Off, negotiatetest.Accept, negotiatetest.Require} {
			acc := &negotiatetest.Acceptor{Keytab: kt, EP: ep, Next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, r.Header.Get("X-Authenticated-User"))
			})}
			srv := httptest.NewUnstartedServer(acc)
			srv.StartTLS()
			acc.Cert = srv.Certificate()
			right := negotiate.TLSServerEndPoint(srv.Certificate())
			for _, tc := range []struct {
				name string
				cb   negotiate.Binding
				ok   bool
			}{
				{"bound", right, true},
				{"unbound", negotiate.Binding{}, ep != negotiatetest.Require},
				{"bound elsewhere", wrong, ep == negotiatetest.Off},
			} {
				h, err := b.HeaderBound(tc.cb)
				if err != nil {
					t.Fatal(err)
				}
				code, body := getTLS(t, srv, h)
				if (code == http.StatusOK) != tc.ok || tc.ok && body != "alice@LAB.TEST" {
					t.Errorf("etype %d, Extended Protection %s, %s token: %d %q", et, ep, tc.name, code, body)
				}
			}
			srv.Close()
		}
	}
}

func getTLS(tb testing.TB, srv *httptest.Server, header string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", header)
	c := srv.Client()
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: srvPool(srv)}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

func srvPool(srv *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(srv.Certificate())
	return p
}

func TestVerifyBindingErrors(t *testing.T) {
	kt, b := bindingFixture(t, etypeID.AES256_CTS_HMAC_SHA1_96)
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	h, err := b.Header()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := negotiatetest.Verify(h, kt, srv.Certificate(), negotiatetest.Require); !errors.Is(err, negotiatetest.ErrBinding) {
		t.Fatalf("unbound token with Require: %v", err)
	}
}
