//go:build lab

package crl

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/internal/testpki"
)

// cdpPublisher returns a function that publishes a CRL on the lab's CDP
// (the file of cdpDir named as the URL's last element, replaced
// atomically) and removes it at the end of the test.
func cdpPublisher(t *testing.T, cdpDir string) func(url string, der []byte) {
	return func(url string, der []byte) {
		t.Helper()
		path := filepath.Join(cdpDir, filepath.Base(url))
		if err := os.WriteFile(path+".tmp", der, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Remove(path) })
	}
}

// TestLabPartitionedCRLs: the lab's second CA (ca2, trusted) partitions its
// CRL. The test signs two partitions with ca2's key, each with an Issuing
// Distribution Point naming its URL, and publishes them on the lab's CDP
// (cdp.lab.test, labtool serve; removed at the end, so lab.sh up is
// unchanged): partition A revokes the serial of a device whose certificate
// names A; partition B, newer, does not list it. The crl role fetches both
// over HTTP from the lab: the device stays revoked, a device of B is good,
// a device of A not listed is good. Then A's URL serves a newer B (a
// partition at another partition's URL): the device of A stays revoked and
// /readyz's note names the URL.
func TestLabPartitionedCRLs(t *testing.T) {
	lab := labenv.Up(t)
	ca2 := testpki.LoadCA(t, lab.CAPEM[2], filepath.Join(lab.Dir, "pki", "ca", "ca2.key"))
	now := time.Now()
	name := fmt.Sprintf("ca2-part-%d", now.UnixNano())
	cdpDir := filepath.Join(lab.Dir, "cdp")
	urlA, urlB := "http://cdp.lab.test/"+name+"-a.crl", "http://cdp.lab.test/"+name+"-b.crl"
	publish := cdpPublisher(t, cdpDir)
	serial := big.NewInt(now.UnixNano())
	partA := ca2.CRL(t, testpki.CRLOptions{Number: 5, ThisUpdate: now.Add(-time.Minute), Partition: []string{urlA},
		Revoked: []testpki.Revoked{{Serial: serial, At: now.Add(-time.Minute)}}})
	partB := func(n int64) []byte {
		return ca2.CRL(t, testpki.CRLOptions{Number: n, ThisUpdate: now, Partition: []string{urlB}})
	}
	publish(urlA, partA)
	publish(urlB, partB(6))

	s, err := labServiceWith(t, lab, []string{urlA, urlB})
	if err != nil {
		t.Fatalf("Start against the lab CDP: %v", err)
	}
	device := func(serial *big.Int, cdp string) *testpki.Cert {
		return ca2.Device(t, "partition device", testpki.Serial(serial), testpki.CDP(cdp))
	}
	for _, tc := range []struct {
		name           string
		cert           *testpki.Cert
		revoked, known bool
	}{
		{"revoked in A only", device(serial, urlA), true, true},
		{"of B, not listed", device(new(big.Int).Add(serial, big.NewInt(1)), urlB), false, true},
		{"of A, not listed", device(new(big.Int).Add(serial, big.NewInt(2)), urlA), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			revoked, info, known, _ := s.Check(tc.cert.Cert)
			if revoked != tc.revoked || known != tc.known {
				t.Fatalf("revoked %v known %v (%+v); want %v %v", revoked, known, info, tc.revoked, tc.known)
			}
		})
	}

	publish(urlA, partB(7))
	s.refresher.RefreshNow(context.Background())
	if revoked, _, _, _ := s.Check(device(serial, urlA).Cert); !revoked {
		t.Fatal("the device revoked in partition A is accepted once A's URL serves a newer partition B")
	}
	if notes := strings.Join(s.Notes(), "\n"); !strings.Contains(notes, urlA) {
		t.Fatalf("notes = %q; want %s named", notes, urlA)
	}
}

// TestLabDisplacedCRLAcrossRestart: rvcrl's replay against the lab's CDP.
// Partition A (revoking a device) and B are published; then, in one
// refresh, A's URL serves a newer B and B's URL serves an older A, genuinely
// signed, that does not list the device. The role is restarted on its state
// directory with both URLs gone from the CDP: the device is still revoked,
// because the A that A's URL gave before is kept on disk (it was lost at a
// restart before session 7), and /readyz's note and /status name the file
// keeping it.
func TestLabDisplacedCRLAcrossRestart(t *testing.T) {
	lab := labenv.Up(t)
	ca2 := testpki.LoadCA(t, lab.CAPEM[2], filepath.Join(lab.Dir, "pki", "ca", "ca2.key"))
	now := time.Now()
	name := fmt.Sprintf("ca2-kept-%d", now.UnixNano())
	cdpDir := filepath.Join(lab.Dir, "cdp")
	urlA, urlB := "http://cdp.lab.test/"+name+"-a.crl", "http://cdp.lab.test/"+name+"-b.crl"
	publish := cdpPublisher(t, cdpDir)
	serial := big.NewInt(now.UnixNano())
	part := func(url string, n int64, revoked ...*big.Int) []byte {
		o := testpki.CRLOptions{Number: n, ThisUpdate: now.Add(time.Duration(n-10) * time.Minute), Partition: []string{url}}
		for _, s := range revoked {
			o.Revoked = append(o.Revoked, testpki.Revoked{Serial: s, At: now.Add(-time.Hour)})
		}
		return ca2.CRL(t, o)
	}
	device := ca2.Device(t, "kept partition device", testpki.Serial(serial), testpki.CDP(urlA)).Cert
	publish(urlA, part(urlA, 5, serial))
	publish(urlB, part(urlB, 8))
	state := t.TempDir()
	s, err := labServiceOf(t, lab, Config{URLs: []string{urlA, urlB}, FailHard: true, StateDir: state})
	if err != nil {
		t.Fatalf("Start against the lab CDP: %v", err)
	}
	publish(urlA, part(urlB, 9))
	publish(urlB, part(urlA, 3))
	s.refresher.RefreshNow(context.Background())
	if revoked, _, _, _ := s.Check(device); !revoked {
		t.Fatal("before the restart: the device revoked in A5 is accepted")
	}
	_ = s.Stop(context.Background())

	for _, u := range []string{urlA, urlB} {
		_ = os.Remove(filepath.Join(cdpDir, filepath.Base(u)))
	}
	restarted, err := labServiceOf(t, lab, Config{URLs: []string{urlA, urlB}, FailHard: true, StateDir: state})
	if err != nil {
		t.Fatalf("restart on the stored copies with the CDP answering 404: %v", err)
	}
	if revoked, info, _, _ := restarted.Check(device); !revoked {
		t.Fatalf("after the restart: the device revoked in A5 is accepted (%+v): an older A replayed at B's URL was put in force", info)
	}
	notes := strings.Join(restarted.Notes(), "\n")
	if !strings.Contains(notes, urlA) || !strings.Contains(notes, filepath.Join(state, "kept")) {
		t.Fatalf("notes = %q; want %s and the kept file under %s named", notes, urlA, state)
	}
}
