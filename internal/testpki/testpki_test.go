package testpki_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/pfx"
	"github.com/segmesh/segmesh/pkg/upn"
)

// verify checks c's chain up to root for usage at now.
func verify(c *testpki.Cert, root *x509.Certificate, usage x509.ExtKeyUsage, now time.Time) error {
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, ca := range c.Chain {
		inters.AddCert(ca)
	}
	_, err := c.Cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: now})
	return err
}

func TestCertificatesParseAndChain(t *testing.T) {
	root := testpki.NewCA(t, "Test Root CA")
	inter := root.Intermediate(t, "Test Issuing CA")
	other := testpki.NewCA(t, "Test Root CA") // same name, other key
	now := time.Now()
	tests := []struct {
		name      string
		cert      *testpki.Cert
		root      *x509.Certificate
		usage     x509.ExtKeyUsage
		wantCA    bool
		wantChain int
		wantErr   bool
	}{
		{"root", root, root.Cert, x509.ExtKeyUsageAny, true, 0, false},
		{"intermediate", inter, root.Cert, x509.ExtKeyUsageAny, true, 0, false},
		{"device of the root", root.Device(t, "bob"), root.Cert, x509.ExtKeyUsageClientAuth, false, 0, false},
		{"device of the intermediate", inter.Device(t, "alice"), root.Cert, x509.ExtKeyUsageClientAuth, false, 1, false},
		{"device of a sub-intermediate", inter.Intermediate(t, "Sub CA").Device(t, "carol"), root.Cert, x509.ExtKeyUsageClientAuth, false, 2, false},
		{"server", inter.Server(t, []string{"seg.lab.test", "127.0.0.1"}), root.Cert, x509.ExtKeyUsageServerAuth, false, 1, false},
		{"device is not a server", inter.Device(t, "dave"), root.Cert, x509.ExtKeyUsageServerAuth, false, 1, true},
		{"server is not a device", inter.Server(t, []string{"seg.lab.test"}), root.Cert, x509.ExtKeyUsageClientAuth, false, 1, true},
		{"plain leaf has no EKU", inter.Issue(t, "erin"), root.Cert, x509.ExtKeyUsageAny, false, 1, false},
		{"other root with the same name", inter.Device(t, "frank"), other.Cert, x509.ExtKeyUsageClientAuth, false, 1, true},
		{"self-signed device", testpki.SelfSigned(t, "grace"), root.Cert, x509.ExtKeyUsageClientAuth, false, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parsed, err := x509.ParseCertificate(tt.cert.Cert.Raw)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if parsed.IsCA != tt.wantCA {
				t.Errorf("IsCA = %v, want %v", parsed.IsCA, tt.wantCA)
			}
			if len(tt.cert.Chain) != tt.wantChain {
				t.Errorf("chain of %d, want %d", len(tt.cert.Chain), tt.wantChain)
			}
			if pub, ok := tt.cert.Cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(tt.cert.Key.Public()) {
				t.Error("key does not match the certificate")
			}
			if err := verify(tt.cert, tt.root, tt.usage, now); (err != nil) != tt.wantErr {
				t.Errorf("verify = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestServerNames(t *testing.T) {
	srv := testpki.NewCA(t, "CA").Server(t, []string{"seg.lab.test", "127.0.0.1", "::1"})
	if got := srv.Cert.Subject.CommonName; got != "seg.lab.test" {
		t.Errorf("CN %q, want the first host", got)
	}
	for _, h := range []string{"seg.lab.test", "127.0.0.1", "::1"} {
		if err := srv.Cert.VerifyHostname(h); err != nil {
			t.Errorf("host %s: %v", h, err)
		}
	}
	if err := srv.Cert.VerifyHostname("other.lab.test"); err == nil {
		t.Error("other.lab.test verifies")
	}
}

func TestUPNAsPkgUPNReadsIt(t *testing.T) {
	ca := testpki.NewCA(t, "CA")
	tests := []struct {
		name    string
		opts    []testpki.Option
		want    []string
		wantDNS []string
	}{
		{"one", []testpki.Option{testpki.UPN("alice@lab.test")}, []string{"alice@lab.test"}, nil},
		{"two", []testpki.Option{testpki.UPN("alice@lab.test", "bob.smith@lab.test")}, []string{"alice@lab.test", "bob.smith@lab.test"}, nil},
		{"non-ASCII", []testpki.Option{testpki.UPN("zoë@lab.test")}, []string{"zoë@lab.test"}, nil},
		{"with DNS names", []testpki.Option{testpki.DNS("device.lab.test"), testpki.UPN("carol@lab.test")}, []string{"carol@lab.test"}, []string{"device.lab.test"}},
		{"NUL kept", []testpki.Option{testpki.UPN("alice\x00@lab.test")}, []string{"alice\x00@lab.test"}, nil},
		{"none", nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []*testpki.Cert{ca.Device(t, "d", tt.opts...), testpki.SelfSigned(t, "d", tt.opts...)} {
				got, err := upn.All(c.Cert)
				if err != nil {
					t.Fatalf("upn.All: %v", err)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("UPNs %q, want %q", got, tt.want)
				}
				if !slices.Equal(c.Cert.DNSNames, tt.wantDNS) {
					t.Errorf("DNS names %q, want %q", c.Cert.DNSNames, tt.wantDNS)
				}
				if len(tt.want) == 1 {
					one, err := upn.FromCertificate(c.Cert)
					if err != nil || one != tt.want[0] {
						t.Errorf("FromCertificate = %q, %v, want %q", one, err, tt.want[0])
					}
				}
			}
		})
	}
}

func TestOptions(t *testing.T) {
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	ca := testpki.NewCA(t, "CA", testpki.At(at))
	subject := pkix.Name{CommonName: "Lab Issuing CA", Organization: []string{"Segmesh Lab"}}
	ext := pkix.Extension{Id: []int{1, 3, 6, 1, 4, 1, 311, 25, 2}, Value: []byte{0x30, 0x00}}
	tests := []struct {
		name  string
		cert  *x509.Certificate
		check func(c *x509.Certificate) bool
	}{
		{"CA validity from At", ca.Cert, func(c *x509.Certificate) bool {
			return c.NotBefore.Equal(at.Add(-time.Hour)) && c.NotAfter.Equal(at.AddDate(10, 0, 0))
		}},
		{"leaf inherits At", ca.Device(t, "d").Cert, func(c *x509.Certificate) bool {
			return c.NotBefore.Equal(at.Add(-time.Hour)) && c.NotAfter.Equal(at.AddDate(1, 0, 0))
		}},
		{"NotBefore and NotAfter", ca.Device(t, "d", testpki.NotBefore(at.Add(time.Minute)), testpki.NotAfter(at.Add(time.Hour))).Cert, func(c *x509.Certificate) bool {
			return c.NotBefore.Equal(at.Add(time.Minute)) && c.NotAfter.Equal(at.Add(time.Hour))
		}},
		{"Serial", ca.Device(t, "d", testpki.Serial(big.NewInt(42))).Cert, func(c *x509.Certificate) bool { return c.SerialNumber.Int64() == 42 }},
		{"random serials differ", ca.Device(t, "d").Cert, func(c *x509.Certificate) bool {
			return c.SerialNumber.Sign() > 0 && c.SerialNumber.Cmp(ca.Device(t, "d").Cert.SerialNumber) != 0
		}},
		{"Subject", ca.Intermediate(t, "ignored", testpki.Subject(subject)).Cert, func(c *x509.Certificate) bool {
			return c.Subject.String() == subject.String()
		}},
		{"EKU replaces", ca.Device(t, "d", testpki.EKU(x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)).Cert, func(c *x509.Certificate) bool {
			return slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
		}},
		{"EKU() drops it", ca.Device(t, "d", testpki.EKU()).Cert, func(c *x509.Certificate) bool { return len(c.ExtKeyUsage) == 0 }},
		{"KeyUsage", ca.Device(t, "d", testpki.KeyUsage(x509.KeyUsageKeyEncipherment)).Cert, func(c *x509.Certificate) bool {
			return c.KeyUsage == x509.KeyUsageKeyEncipherment
		}},
		{"CDP", ca.Device(t, "d", testpki.CDP("http://cdp.lab.test/inter.crl")).Cert, func(c *x509.Certificate) bool {
			return slices.Equal(c.CRLDistributionPoints, []string{"http://cdp.lab.test/inter.crl"})
		}},
		{"SubjectKeyID", ca.Device(t, "d", testpki.SubjectKeyID([]byte{1, 2, 3})).Cert, func(c *x509.Certificate) bool {
			return bytes.Equal(c.SubjectKeyId, []byte{1, 2, 3})
		}},
		{"no SubjectKeyID on leaves by default", ca.Device(t, "d").Cert, func(c *x509.Certificate) bool { return len(c.SubjectKeyId) == 0 }},
		{"CAs have a SubjectKeyID", ca.Cert, func(c *x509.Certificate) bool { return len(c.SubjectKeyId) > 0 }},
		{"Extension", ca.Device(t, "d", testpki.Extension(ext)).Cert, func(c *x509.Certificate) bool {
			return slices.ContainsFunc(c.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(ext.Id) && bytes.Equal(e.Value, ext.Value) })
		}},
		{"URI", ca.Device(t, "d", testpki.URI("spiffe://segmesh.test/edge")).Cert, func(c *x509.Certificate) bool {
			return len(c.URIs) == 1 && c.URIs[0].String() == "spiffe://segmesh.test/edge"
		}},
		{"IP", ca.Device(t, "d", testpki.IP(net.ParseIP("127.0.0.1"))).Cert, func(c *x509.Certificate) bool {
			return len(c.IPAddresses) == 1 && c.IPAddresses[0].Equal(net.ParseIP("127.0.0.1"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.check(tt.cert) {
				t.Errorf("certificate does not carry the option: %+v", tt.cert)
			}
		})
	}
}

// fatalTB records whether a function ended its test with Fatal.
type fatalTB struct {
	testing.TB
	mu     sync.Mutex
	failed bool
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(string, ...any) {
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fatalTB) Fatal(...any) { f.Fatalf("") }

// fails reports whether fn calls Fatal on its TB.
func fails(t *testing.T, fn func(tb testing.TB)) bool {
	t.Helper()
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func TestMisuseFails(t *testing.T) {
	ca := testpki.NewCA(t, "CA")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		name string
		fn   func(tb testing.TB)
		want bool
	}{
		{"UPN with IP", func(tb testing.TB) {
			ca.Device(tb, "d", testpki.UPN("a@lab.test"), testpki.IP(net.ParseIP("127.0.0.1")))
		}, true},
		{"UPN with URI", func(tb testing.TB) { ca.Device(tb, "d", testpki.UPN("a@lab.test"), testpki.URI("spiffe://x/y")) }, true},
		{"server without hosts", func(tb testing.TB) { ca.Server(tb, nil) }, true},
		{"missing CA file", func(tb testing.TB) { testpki.LoadCA(tb, missing, missing) }, true},
		{"UPN with DNS", func(tb testing.TB) { ca.Device(tb, "d", testpki.UPN("a@lab.test"), testpki.DNS("d.lab.test")) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fails(t, tt.fn); got != tt.want {
				t.Errorf("failed = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCRLVerifies(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	ca := testpki.NewCA(t, "CA")
	impostor := testpki.NewCA(t, "CA") // same name, other key
	dev := ca.Device(t, "alice")
	tests := []struct {
		name        string
		signer      *testpki.Cert
		opts        testpki.CRLOptions
		wantSerials []*big.Int
		wantNumber  int64
		wantNext    time.Time
		wantSigned  bool
	}{
		{"empty", ca, testpki.CRLOptions{ThisUpdate: now}, nil, 1, now.Add(24 * time.Hour), true},
		{"revokes the device", ca, testpki.CRLOptions{Number: 7, ThisUpdate: now, NextUpdate: now.Add(time.Hour),
			Revoked: []testpki.Revoked{{Serial: dev.Cert.SerialNumber, At: now, Reason: 1}}}, []*big.Int{dev.Cert.SerialNumber}, 7, now.Add(time.Hour), true},
		{"impostor's", impostor, testpki.CRLOptions{ThisUpdate: now}, nil, 1, now.Add(24 * time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rl, err := x509.ParseRevocationList(tt.signer.CRL(t, tt.opts))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if err := rl.CheckSignatureFrom(ca.Cert); (err == nil) != tt.wantSigned {
				t.Errorf("signature check against the CA = %v, want signed %v", err, tt.wantSigned)
			}
			if rl.Number.Int64() != tt.wantNumber || !rl.NextUpdate.Equal(tt.wantNext) {
				t.Errorf("number %v next %v, want %d %v", rl.Number, rl.NextUpdate, tt.wantNumber, tt.wantNext)
			}
			var got []*big.Int
			for _, e := range rl.RevokedCertificateEntries {
				got = append(got, e.SerialNumber)
			}
			if !slices.EqualFunc(got, tt.wantSerials, func(a, b *big.Int) bool { return a.Cmp(b) == 0 }) {
				t.Errorf("revoked %v, want %v", got, tt.wantSerials)
			}
		})
	}
}

func TestPEMForms(t *testing.T) {
	root := testpki.NewCA(t, "Root")
	inter := root.Intermediate(t, "Issuing")
	dev := inter.Device(t, "alice", testpki.UPN("alice@lab.test"))
	var blocks [][]byte
	for rest := testpki.PEM(root.Cert, inter.Cert); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		blocks = append(blocks, b.Bytes)
	}
	if len(blocks) != 2 || !bytes.Equal(blocks[0], root.Cert.Raw) || !bytes.Equal(blocks[1], inter.Cert.Raw) {
		t.Fatalf("PEM holds %d blocks, want root then intermediate", len(blocks))
	}
	pair, err := tls.X509KeyPair(dev.PEM(), dev.KeyPEM(t))
	if err != nil {
		t.Fatalf("X509KeyPair: %v", err)
	}
	if !bytes.Equal(pair.Certificate[0], dev.Cert.Raw) {
		t.Error("key pair is not the device certificate")
	}
	certFile, keyFile := dev.WriteFiles(t, t.TempDir(), "alice")
	files, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("LoadX509KeyPair: %v", err)
	}
	if len(files.Certificate) != 2 || !bytes.Equal(files.Certificate[1], inter.Cert.Raw) {
		t.Errorf("written chain of %d, want the device and its issuer", len(files.Certificate))
	}
	if got := dev.TLS(); len(got.Certificate) != 2 || !bytes.Equal(got.Certificate[1], inter.Cert.Raw) || got.Leaf != dev.Cert {
		t.Errorf("TLS chain of %d, want the device and its issuer", len(got.Certificate))
	}
}

// TestTLSHandshake runs a mutual TLS handshake with a server certificate and
// a device certificate of an intermediate, as the edge sees a device.
func TestTLSHandshake(t *testing.T) {
	root := testpki.NewCA(t, "Root")
	inter := root.Intermediate(t, "Issuing")
	srv, dev := inter.Server(t, []string{"seg.lab.test"}), inter.Device(t, "alice", testpki.UPN("alice@lab.test"))
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	sc, cc := net.Pipe()
	t.Cleanup(func() { _ = sc.Close(); _ = cc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server := tls.Server(sc, &tls.Config{Certificates: []tls.Certificate{srv.TLS()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12})
	errc := make(chan error, 1)
	go func() { errc <- server.HandshakeContext(ctx) }()
	client := tls.Client(cc, &tls.Config{Certificates: []tls.Certificate{dev.TLS()}, RootCAs: pool, ServerName: "seg.lab.test", MinVersion: tls.VersionTLS12})
	if err := client.HandshakeContext(ctx); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	peer := server.ConnectionState().PeerCertificates
	if len(peer) != 2 {
		t.Fatalf("server saw %d certificates, want 2", len(peer))
	}
	if got, err := upn.FromCertificate(peer[0]); err != nil || got != "alice@lab.test" {
		t.Errorf("UPN %q, %v", got, err)
	}
}

func TestLoadCA(t *testing.T) {
	root := testpki.NewCA(t, "Root")
	inter := root.Intermediate(t, "Issuing")
	dir := t.TempDir()
	tests := []struct {
		name      string
		ca        *testpki.Cert
		wantChain int
	}{
		{"intermediate", inter, 1},
		{"root", root, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certFile, keyFile := tt.ca.WriteFiles(t, dir, tt.name)
			loaded := testpki.LoadCA(t, certFile, keyFile)
			if !loaded.Cert.Equal(tt.ca.Cert) {
				t.Fatal("loaded another certificate")
			}
			dev := loaded.Device(t, "alice")
			if len(dev.Chain) != tt.wantChain {
				t.Errorf("chain of %d, want %d", len(dev.Chain), tt.wantChain)
			}
			if err := verify(dev, root.Cert, x509.ExtKeyUsageClientAuth, time.Now()); err != nil {
				t.Errorf("verify: %v", err)
			}
		})
	}
}

func TestOpenSSLPFX(t *testing.T) {
	a, b := testpki.NewCA(t, "CA A"), testpki.NewCA(t, "CA B")
	tests := []struct {
		name string
		key  *testpki.Cert
	}{
		{"certificates only", nil},
		{"with the first one's key", a},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var data []byte
			if tt.key != nil {
				data = testpki.OpenSSLPFX(t, "pässword", []*x509.Certificate{a.Cert, b.Cert}, tt.key.Key)
			} else {
				data = testpki.OpenSSLPFX(t, "pässword", []*x509.Certificate{a.Cert, b.Cert}, nil)
			}
			got, err := pfx.Decode(data, "pässword")
			if err != nil {
				t.Fatalf("pfx.Decode: %v", err)
			}
			if len(got) != 2 || !slices.ContainsFunc(got, a.Cert.Equal) || !slices.ContainsFunc(got, b.Cert.Equal) {
				t.Errorf("decoded %d certificates, want CA A and CA B", len(got))
			}
		})
	}
}
