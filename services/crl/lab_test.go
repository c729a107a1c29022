//go:build lab

package crl

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/trust"
)

// The crl role against the lab's PKI and CDP (issue 8's done list, role side):
// revoked and good certificates, a revocation after start, fail-hard and
// fail-soft with the CDP down, a restart on the stored copy, and a CDP
// serving garbage. Run: go test -tags lab -run Lab ./services/crl/

func labService(t *testing.T, lab *labenv.Env, failHard bool, stateDir string) (*Service, error) {
	t.Helper()
	return labServiceOf(t, lab, Config{URLs: lab.CRLURLs, FailHard: failHard, StateDir: stateDir})
}

// labServiceWith starts a crl role on urls of the lab's CDP, fail-hard,
// with the lab's trust store.
func labServiceWith(t *testing.T, lab *labenv.Env, urls []string) (*Service, error) {
	t.Helper()
	return labServiceOf(t, lab, Config{URLs: urls, FailHard: true, StateDir: t.TempDir()})
}

// labServiceOf starts a crl role with cfg's URLs, fail-hard and state
// directory, checking CRLs against the lab's trust store.
func labServiceOf(t *testing.T, lab *labenv.Env, cfg Config) (*Service, error) {
	t.Helper()
	cfg.Enabled, cfg.Interval = true, time.Hour
	cfg.Trust = trust.Spec{TrustStorePath: strings.Join(lab.CAPEM, ",")}
	s, err := New(role.Deps{Logger: slog.New(slog.DiscardHandler)}, WithConfig(cfg), WithFetcher(&fetch.Fetcher{Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s, s.Start(context.Background())
}

func TestLabRevocation(t *testing.T) {
	lab := labenv.Up(t)
	state := t.TempDir()
	s, err := labService(t, lab, true, state)
	if err != nil {
		t.Fatalf("Start against the lab CDP: %v", err)
	}
	for _, tc := range []struct {
		user           string
		revoked, known bool
	}{
		{"alice", false, true},
		{"alice-revoked", true, true},
		{"alice-ca2", false, true},
		{"alice-ca3", false, false}, // untrusted CA: no CRL of it is fetched
	} {
		t.Run(tc.user, func(t *testing.T) {
			revoked, info, known, _ := s.Check(testpki.CertFile(t, lab.User(tc.user).Cert))
			if revoked != tc.revoked || known != tc.known {
				t.Fatalf("revoked %v known %v (%+v), want %v %v", revoked, known, info, tc.revoked, tc.known)
			}
		})
	}

	t.Run("revoked after start", func(t *testing.T) {
		// Each run revokes one generated user for good, counting down from
		// user(N-2) (labenv's own test takes user(N-1)).
		var user string
		var cert *x509.Certificate
		for i := lab.GeneratedUsers - 2; i > lab.GeneratedUsers-60 && i > 0; i-- {
			u := fmt.Sprintf("user%04d", i)
			c := testpki.CertFile(t, lab.User(u).Cert)
			if revoked, _, _, _ := s.Check(c); !revoked {
				user, cert = u, c
				break
			}
		}
		if cert == nil {
			t.Skip("every candidate user is already revoked; run lab.sh up --users with more")
		}
		lab.Revoke(t, user)
		s.refresher.RefreshNow(context.Background())
		if revoked, _, _, _ := s.Check(cert); !revoked {
			t.Fatalf("%s not revoked after the next refresh", user)
		}
	})

	t.Run("CDP serving garbage leaves the last good CRL", func(t *testing.T) {
		lab.CDPGarbage(t)
		v := s.Snapshot().Version()
		s.refresher.RefreshNow(context.Background())
		if revoked, _, _, _ := s.Check(testpki.CertFile(t, lab.User("alice-revoked").Cert)); !revoked {
			t.Fatal("alice-revoked accepted while the CDP serves garbage")
		}
		if s.Snapshot().Version() != v {
			t.Fatal("garbage published a new snapshot")
		}
		for _, st := range s.refresher.Status() {
			if st.LastError == nil {
				t.Errorf("%s: no error recorded for garbage", st.URL)
			}
		}
	})

	t.Run("CDP down", func(t *testing.T) {
		lab.Fault(t, "cdp", true)
		if _, err := labService(t, lab, true, t.TempDir()); err == nil || !strings.Contains(err.Error(), lab.CRLURLs[0]) {
			t.Fatalf("fail hard, nothing stored: Start = %v, want an error naming %s", err, lab.CRLURLs[0])
		}
		if _, err := labService(t, lab, false, t.TempDir()); err != nil {
			t.Fatalf("fail soft: Start = %v", err)
		}
		restarted, err := labService(t, lab, true, state)
		if err != nil {
			t.Fatalf("fail hard with the stored copies: Start = %v", err)
		}
		if revoked, _, _, _ := restarted.Check(testpki.CertFile(t, lab.User("alice-revoked").Cert)); !revoked {
			t.Fatal("stored CRL not enforced after a restart with the CDP down")
		}
	})
}
