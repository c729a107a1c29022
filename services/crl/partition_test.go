package crl

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl/crltest"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// partitionCRL is f.ca's CRL number n covering the partition whose
// distribution point is dp (none: the full CRL), revoking serials.
func (f *fixture) partitionCRL(t *testing.T, n int64, dp string, serials ...int64) []byte {
	t.Helper()
	o := crltest.CRLOptions{Number: n, ThisUpdate: f.now.Add(-time.Duration(10-n) * time.Minute)}
	if dp != "" {
		o.Partition = []string{dp}
	}
	for _, s := range serials {
		o.Revoked = append(o.Revoked, crltest.Revoked{Serial: big.NewInt(s), At: f.now.Add(-time.Minute)})
	}
	return f.ca.CRL(t, o)
}

// TestAttackPartitionedCRLsThroughTheRole: a CA partitions its CRL; the
// crl role fetches partition A (revoking 42) and partition B (newer, not
// listing 42) from their distribution points. Serial 42, whose certificate
// names A, must stay revoked in the role's snapshot, its Check and the
// snapshot it streams to edges; a certificate of B not listed is good. The
// full CRL's URL then serves a newer partition (genuinely signed): what
// the full CRL listed stays revoked. Failed on main: the snapshot kept one
// CRL per issuer, the newer partition.
func TestAttackPartitionedCRLsThroughTheRole(t *testing.T) {
	f := newFixture(t)
	cdpA, cdpB := f.cdp, newCDP(t)
	urlA, urlB := cdpA.url(), cdpB.srv.URL+"/CertEnroll/part-b.crl"
	cdpA.serve(f.partitionCRL(t, 5, urlA, 42))
	cdpB.serve(f.partitionCRL(t, 6, urlB, 43))
	cfg := f.config(t)
	cfg.URLs = []string{urlA, urlB}
	s := f.service(t, cfg)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	client := serve(t, s)
	check := func(t *testing.T, serial int64, cdp string, want crlv1.RevocationStatus) {
		t.Helper()
		leaf := f.ca.Leaf(t, big.NewInt(serial), f.now, cdp)
		resp, err := client.Check(context.Background(), &crlv1.CheckRequest{CertificateDer: leaf.Raw})
		if err != nil || resp.GetStatus() != want {
			t.Fatalf("Check of serial %d (distribution point %s) = %v, %v; want %v", serial, cdp, resp.GetStatus(), err, want)
		}
	}
	check(t, 42, urlA, crlv1.RevocationStatus_REVOCATION_STATUS_REVOKED)
	check(t, 43, urlB, crlv1.RevocationStatus_REVOCATION_STATUS_REVOKED)
	check(t, 44, urlB, crlv1.RevocationStatus_REVOCATION_STATUS_GOOD)

	// The snapshot streamed to edges carries both partitions.
	st, err := client.WatchSnapshots(context.Background(), &crlv1.WatchSnapshotsRequest{AcceptParts: true})
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]bool{}
	for _, c := range m.GetCrls() {
		sources[c.GetSourceUrl()] = true
	}
	if !sources[urlA] || !sources[urlB] {
		t.Fatalf("streamed snapshot holds the CRLs of %v; want both partitions", sources)
	}

	// The full CRL's URL, then a newer partition at that URL.
	cdpFull := newCDP(t)
	urlFull := cdpFull.srv.URL + "/CertEnroll/full.crl"
	cdpFull.serve(f.partitionCRL(t, 7, "", 45))
	commit, err := s.PrepareConfig(context.Background(), reloaded([]string{urlA, urlB, urlFull}, nil))
	if err != nil {
		t.Fatal(err)
	}
	commit()
	s.refresher.RefreshNow(context.Background())
	check(t, 45, urlFull, crlv1.RevocationStatus_REVOCATION_STATUS_REVOKED)
	cdpFull.serve(f.partitionCRL(t, 8, urlB))
	s.refresher.RefreshNow(context.Background())
	check(t, 45, urlFull, crlv1.RevocationStatus_REVOCATION_STATUS_REVOKED)
	check(t, 42, urlA, crlv1.RevocationStatus_REVOCATION_STATUS_REVOKED)
	// Never silent: /readyz's note and /status name the URL and say the
	// full CRL is kept; it goes stale on its own nextUpdate.
	notes := strings.Join(s.Notes(), "\n")
	if !strings.Contains(notes, urlFull) || !strings.Contains(notes, "another issuer or partition") || !strings.Contains(notes, "every certificate of the issuer") {
		t.Fatalf("notes = %q; want the displaced full CRL of %s named", notes, urlFull)
	}
	page, err := json.Marshal(s.statusSection())
	if err != nil || !strings.Contains(string(page), `"displaced":true`) || !strings.Contains(string(page), `"keptFile":"`) {
		t.Fatalf("status = %s, %v; want the displaced CRL shown with the file keeping it", page, err)
	}
	if !strings.Contains(notes, "across restarts") || !strings.Contains(notes, "/kept/") {
		t.Fatalf("notes = %q; want the kept file named", notes)
	}

	// The older full CRL replayed at A's URL: refused as older than the
	// displaced one; /readyz's note names the URL, the metric counts
	// result "older" (TestMetrics) and /status has the error.
	cdpA.serve(f.partitionCRL(t, 6, ""))
	s.refresher.RefreshNow(context.Background())
	check(t, 45, urlA, crlv1.RevocationStatus_REVOCATION_STATUS_REVOKED)
	notes = strings.Join(s.Notes(), "\n")
	if !strings.Contains(notes, urlA+" now serves a CRL") || !strings.Contains(notes, "older") {
		t.Fatalf("notes = %q; want the refused older CRL at %s named", notes, urlA)
	}
	if page, _ := json.Marshal(s.statusSection()); !strings.Contains(string(page), "older than number 7") {
		t.Fatalf("status = %s; want the refusal in lastError", page)
	}
}

// TestUnsupportedCRLKeepsTheLastAndSaysSo: the distribution point of a
// good CRL starts serving, genuinely signed and newer, a CRL segmesh cannot
// apply: a reason partition (onlySomeReasons), an authority revocation
// list (onlyContainsCACerts), an indirect CRL. It is refused (RFC 5280
// 5.2.5: segmesh cannot tell which certificates it covers), the last good
// CRL stays in force (serial 42 stays revoked), and /readyz's note names
// the URL and the setting; the fetch metric counts result "unsupported"
// and /status has the error.
func TestUnsupportedCRLKeepsTheLastAndSaysSo(t *testing.T) {
	idp := func(content ...byte) []byte { return append([]byte{0x30, byte(len(content))}, content...) }
	for _, tc := range []struct {
		name string
		idp  []byte
	}{
		{"onlySomeReasons", idp(0x83, 0x02, 0x06, 0x40)},
		{"onlyContainsCACerts", idp(0x82, 0x01, 0xff)},
		{"indirectCRL", idp(0x84, 0x01, 0xff)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.cdp.serve(f.crl(t, 1, 42))
			s := f.service(t, f.config(t))
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(2), ThisUpdate: f.now, NextUpdate: f.now.Add(time.Hour),
				ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 28}, Critical: true, Value: tc.idp}}}, f.ca.Cert, f.ca.Key)
			if err != nil {
				t.Fatal(err)
			}
			f.cdp.serve(der)
			s.refresher.RefreshNow(context.Background())
			if rev, _, known, _ := s.Check(f.ca.Leaf(t, big.NewInt(42), f.now)); !rev || !known {
				t.Fatalf("serial 42 after the unsupported CRL: revoked %v known %v", rev, known)
			}
			notes := strings.Join(s.Notes(), "\n")
			if !strings.Contains(notes, f.cdp.url()) || !strings.Contains(notes, tc.name) || !strings.Contains(notes, "remote.crl.distribution.http.uris") {
				t.Fatalf("notes = %q; want the URL, the reason and the setting", notes)
			}
		})
	}
}
