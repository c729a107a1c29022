package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
	"github.com/segmesh/segmesh/pkg/trust"
)

// selfSignedCAPEM returns a PEM CA certificate.
func selfSignedCAPEM(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Device CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestAttackTrustStoreOthersMayReplace: the client certificate trust store
// (clientCertTrustStorePath) decides which CAs may vouch for a device, and
// a certificate's UPN decides whose Kerberos tickets the gateway fetches
// for it. Whoever can write the store, or rename entries in its directory,
// adds a CA of theirs, issues a certificate naming any user, and the
// gateway fetches that user's tickets for them. The secrets key and the
// session ticket key file are refused when another user could replace
// them (safefile.CheckPrivate, session 8, sshd's StrictModes), but the
// trust store, whose replacement gives more, was accepted group- and
// world-writable, or in a directory others may write, without a word on
// check, start or reload (attacker review rvpath, session 8, defect 3:
// landed skipped; on main each row failed with TrustProblems = []). It is
// now refused by pkg/trust's reader (safefile.CheckReplaceable), which the
// start, every reload and config check share.
func TestAttackTrustStoreOthersMayReplace(t *testing.T) {
	for _, tc := range []struct {
		name              string
		file, dir, parent os.FileMode
		wantRefusalSays   string
	}{
		{"others may write the store", 0o666, 0o700, 0, "0666"},
		{"group may write the store", 0o664, 0o700, 0, "0664"},
		{"others may write its directory", 0o644, 0o777, 0, "0777"},
		{"others may write the directory above", 0o644, 0o755, 0o777, "0777"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := safefiletest.Tree{File: tc.file, Dir: tc.dir, Parent: tc.parent}.Make(t, "ssl-certs", "CA01.pem", selfSignedCAPEM(t))
			c := config.Default()
			c.BaseDir = filepath.Dir(filepath.Dir(p))
			c.ClientCertTrustStorePath = p
			ps := config.TrustProblems(&c)
			if !slices.ContainsFunc(ps, func(q config.Problem) bool {
				return q.Key == trust.KeyPath && q.Severity == config.SeverityError &&
					strings.Contains(q.Message, tc.wantRefusalSays) && strings.Contains(q.Fix, "chmod go-w")
			}) {
				t.Fatalf("TrustProblems = %+v; want the store refused because another user may replace it (%s)", ps, tc.wantRefusalSays)
			}
		})
	}
}
