package trust

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpki"
)

func tlsCert(leaf, issuer *testpki.Cert) tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{leaf.Cert.Raw, issuer.Cert.Raw}, PrivateKey: leaf.Key, Leaf: leaf.Cert}
}

// echoServer serves TLS on loopback with the trust store of r, echoing one line per read.
func echoServer(t *testing.T, r *Reloader, server tls.Certificate, resumed *atomic.Int32) string {
	t.Helper()
	verify := VerifyConnectionFunc(r.Store, time.Now, true)
	base := &tls.Config{Certificates: []tls.Certificate{server}}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return &tls.Config{
			Certificates: []tls.Certificate{server},
			ClientAuth:   tls.RequireAnyClientCert,
			ClientCAs:    r.Store().Pool(),
			VerifyConnection: func(cs tls.ConnectionState) error {
				if cs.DidResume {
					resumed.Add(1)
				}
				return verify(cs)
			},
		}, nil
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line and reads it back.
func roundTrip(c *tls.Conn) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err == nil && line != "ping\n" {
		err = errors.New("echo mismatch")
	}
	return err
}

// TestTLSReload: a reload changes who may connect next without dropping connections that
// are open, and a removed CA cannot come back through session resumption.
func TestTLSReload(t *testing.T) {
	serverCA := newCA(t, "Server CA")
	serverLeaf := serverCA.Server(t, []string{"localhost"})
	caA, caB := newCA(t, "Device CA A"), newCA(t, "Device CA B")
	devA, devB := caA.Device(t, "alice"), caB.Device(t, "bob")

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ca.pem"), pemOf(caA))
	r, err := NewReloader(ReloaderOptions{Spec: Spec{TrustStorePath: "ca.pem", BaseDir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	var resumed atomic.Int32
	addr := echoServer(t, r, tlsCert(serverLeaf, serverCA), &resumed)

	roots := x509.NewCertPool()
	roots.AddCert(serverCA.Cert)
	// One session cache per device: a client resumes whatever session its cache holds, even
	// with another certificate configured.
	caches := map[*testpki.Cert]tls.ClientSessionCache{}
	dial := func(dev, issuer *testpki.Cert) (*tls.Conn, error) {
		if caches[dev] == nil {
			caches[dev] = tls.NewLRUClientSessionCache(4)
		}
		cfg := &tls.Config{RootCAs: roots, ServerName: "localhost", ClientSessionCache: caches[dev]}
		if dev != nil {
			cfg.Certificates = []tls.Certificate{tlsCert(dev, issuer)}
		}
		return tls.Dial("tcp", addr, cfg)
	}

	open, err := dial(devA, caA)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := roundTrip(open); err != nil {
		t.Fatalf("device A refused before the reload: %v", err)
	}
	// A second connection resumes (TLS 1.3 tickets arrived with the first round trip).
	again, err := dial(devA, caA)
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(again); err != nil || !again.ConnectionState().DidResume {
		t.Fatalf("resumption before the reload: err %v, resumed %v", err, again.ConnectionState().DidResume)
	}
	again.Close()

	writeFile(t, filepath.Join(dir, "ca.pem"), pemOf(caB))
	if tried, err := r.Poll(); !tried || err != nil {
		t.Fatalf("Poll = %v, %v", tried, err)
	}

	if err := roundTrip(open); err != nil {
		t.Fatalf("open connection dropped by the reload: %v", err)
	}
	before := resumed.Load()
	if c, err := dial(devA, caA); err == nil {
		if err := roundTrip(c); err == nil {
			t.Fatal("device A (CA removed) accepted after the reload")
		}
		c.Close()
	}
	if resumed.Load() == before {
		t.Error("the refused device A did not try to resume; the test no longer covers resumption")
	}
	c, err := dial(devB, caB)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c); err != nil {
		t.Fatalf("device B refused after the reload: %v", err)
	}
	if c, err := dial(nil, nil); err == nil {
		if err := roundTrip(c); err == nil {
			t.Fatal("connection without a client certificate accepted")
		}
		c.Close()
	}
}

func TestVerifyConnectionFuncOptional(t *testing.T) {
	s, err := load(Spec{}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return testNow }
	if err := VerifyConnectionFunc(func() *Store { return s }, now, false)(tls.ConnectionState{}); err != nil {
		t.Errorf("optional, no certificate: %v", err)
	}
	var ve *VerifyError
	if err := VerifyConnectionFunc(func() *Store { return s }, now, true)(tls.ConnectionState{}); !errors.As(err, &ve) || ve.Reason != ReasonNoCertificate {
		t.Errorf("required, no certificate: %v", err)
	}
}
