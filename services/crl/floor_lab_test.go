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

// TestLabNewestCRLNeverRolledBack: the lab's second CA partitions its CRL;
// A3 (not listing a device) is served at urlA, a mirror lagging, and A5
// (revoking it) at urlB, over HTTP from the lab's CDP. Two ways the newest
// CRL was held where a restart never looked, each followed by a restart
// with the CDP files gone:
//   - "config edited while down": both URLs listed, then the role is
//     restarted with urlB taken out of the configuration (no reload);
//   - "learnt from the certificate": only urlA listed, down at the start,
//     so the device's issuer is unknown and the role learns urlB from the
//     device's certificate (segmesh.crl.useCertificateCdps); then urlA
//     serves A3.
//
// Either way the device stays revoked after the restart, and /readyz's
// note names the file under <stateDir>/kept keeping A5.
func TestLabNewestCRLNeverRolledBack(t *testing.T) {
	lab := labenv.Up(t)
	for _, how := range []string{"config edited while down", "learnt from the certificate"} {
		t.Run(how, func(t *testing.T) {
			w := newPartitionA(t, lab, "floor")
			publish, cdpDir, urlA, urlB, serial := w.publish, w.cdpDir, w.urlA, w.urlB, w.serial
			device := w.ca2.Device(t, "floor device", testpki.Serial(serial), testpki.CDP(urlA), testpki.CDP(urlB)).Cert
			state := t.TempDir()
			publish(urlB, w.part(t, 5, serial))
			learn := how == "learnt from the certificate"
			var s *Service
			var err error
			if learn {
				s, err = labServiceOf(t, lab, Config{URLs: []string{urlA}, UseCertificateCDPs: true, StateDir: state})
				if err != nil {
					t.Fatalf("Start against the lab CDP: %v", err)
				}
				if _, _, known, _ := s.Check(device); known {
					t.Fatal("the device's issuer is known before urlB is learnt")
				}
				s.refresher.RefreshNow(context.Background())
				publish(urlA, w.part(t, 3))
				s.refresher.RefreshNow(context.Background())
			} else {
				publish(urlA, w.part(t, 3))
				s, err = labServiceOf(t, lab, Config{URLs: []string{urlA, urlB}, FailHard: true, StateDir: state})
				if err != nil {
					t.Fatalf("Start against the lab CDP: %v", err)
				}
			}
			if revoked, info, _, _ := s.Check(device); !revoked {
				t.Fatalf("before the restart: the device revoked in A5 is accepted (%+v)", info)
			}
			_ = s.Stop(context.Background())
			for _, u := range []string{urlA, urlB} {
				_ = os.Remove(filepath.Join(cdpDir, filepath.Base(u)))
			}
			restarted, err := labServiceOf(t, lab, Config{URLs: []string{urlA}, UseCertificateCDPs: learn, FailHard: true, StateDir: state})
			if err != nil {
				t.Fatalf("restart on the stored copies with the CDP answering 404: %v", err)
			}
			if revoked, info, _, _ := restarted.Check(device); !revoked {
				t.Fatalf("after the restart: the device revoked in A5 is accepted (%+v): A3 of urlA was put in force", info)
			}
			notes := strings.Join(restarted.Notes(), "\n")
			if !strings.Contains(notes, urlB) || !strings.Contains(notes, filepath.Join(state, "kept")) {
				t.Fatalf("notes = %q; want %s and the kept file under %s named", notes, urlB, state)
			}
		})
	}
}

// partitionA is the lab's second CA (ca2) with two URLs of its partition
// A on the lab's CDP (urlA, urlB, named after the test and the time), a
// device serial, and what publishes a CRL there (cdpPublisher: removed at
// the end of the test).
type partitionA struct {
	ca2        *testpki.Cert
	cdpDir     string
	publish    func(url string, der []byte)
	urlA, urlB string
	serial     *big.Int
	now        time.Time
}

func newPartitionA(t *testing.T, lab *labenv.Env, what string) *partitionA {
	t.Helper()
	w := &partitionA{ca2: testpki.LoadCA(t, lab.CAPEM[2], filepath.Join(lab.Dir, "pki", "ca", "ca2.key")), cdpDir: filepath.Join(lab.Dir, "cdp"), now: time.Now()}
	w.publish = cdpPublisher(t, w.cdpDir)
	name := fmt.Sprintf("ca2-%s-%d", what, w.now.UnixNano())
	w.urlA, w.urlB = "http://cdp.lab.test/"+name+"-a.crl", "http://cdp.lab.test/"+name+"-b.crl"
	w.serial = big.NewInt(w.now.UnixNano())
	return w
}

// part is partition A's CRL number n, listing revoked, signed by ca2.
func (w *partitionA) part(t *testing.T, n int64, revoked ...*big.Int) []byte {
	t.Helper()
	o := testpki.CRLOptions{Number: n, ThisUpdate: w.now.Add(time.Duration(n-10) * time.Minute), Partition: []string{w.urlA}}
	for _, s := range revoked {
		o.Revoked = append(o.Revoked, testpki.Revoked{Serial: s, At: w.now.Add(-time.Hour)})
	}
	return w.ca2.CRL(t, o)
}
