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
	ca2 := testpki.LoadCA(t, lab.CAPEM[2], filepath.Join(lab.Dir, "pki", "ca", "ca2.key"))
	cdpDir := filepath.Join(lab.Dir, "cdp")
	for _, how := range []string{"config edited while down", "learnt from the certificate"} {
		t.Run(how, func(t *testing.T) {
			publish := cdpPublisher(t, cdpDir)
			now := time.Now()
			name := fmt.Sprintf("ca2-floor-%d", now.UnixNano())
			urlA, urlB := "http://cdp.lab.test/"+name+"-a.crl", "http://cdp.lab.test/"+name+"-b.crl"
			serial := big.NewInt(now.UnixNano())
			part := func(n int64, revoked ...*big.Int) []byte {
				o := testpki.CRLOptions{Number: n, ThisUpdate: now.Add(time.Duration(n-10) * time.Minute), Partition: []string{urlA}}
				for _, s := range revoked {
					o.Revoked = append(o.Revoked, testpki.Revoked{Serial: s, At: now.Add(-time.Hour)})
				}
				return ca2.CRL(t, o)
			}
			device := ca2.Device(t, "floor device", testpki.Serial(serial), testpki.CDP(urlA), testpki.CDP(urlB)).Cert
			state := t.TempDir()
			publish(urlB, part(5, serial))
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
				publish(urlA, part(3))
				s.refresher.RefreshNow(context.Background())
			} else {
				publish(urlA, part(3))
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
