//go:build lab

package split

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
)

// pickUsers returns n generated lab users whose device certificates are on
// none of the lab's CRLs (other lab tests revoke generated users for good,
// from the top). When fewer than n are left it adds users to the lab
// (`lab.sh up --users`, which only ever adds) and looks again.
func pickUsers(t *testing.T, lab *labenv.Env, n int) []string {
	t.Helper()
	revoked := revokedSerials(t, lab)
	var out, skipped []string
	for i := 1; i <= lab.GeneratedUsers && len(out) < n; i++ {
		u := fmt.Sprintf("user%04d", i)
		if revoked[userSerial(t, lab, u).String()] {
			skipped = append(skipped, u)
			continue
		}
		out = append(out, u)
	}
	if len(skipped) > 0 {
		t.Logf("skipping %d revoked lab users: %v", len(skipped), skipped)
	}
	if len(out) < n {
		more := lab.GeneratedUsers + (n - len(out)) + 10
		t.Logf("only %d unrevoked generated users: lab.sh up --users %d", len(out), more)
		lab.Run(t, "up", "--users", strconv.Itoa(more))
		lab = labenv.Load(t)
		if lab.GeneratedUsers < more {
			t.Fatalf("lab.sh up --users %d left %d generated users", more, lab.GeneratedUsers)
		}
		return pickUsers(t, lab, n)
	}
	return out
}

// revokedSerials fetches the trusted CAs' CRLs and returns every revoked serial (decimal).
func revokedSerials(t *testing.T, lab *labenv.Env) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, u := range lab.CRLURLs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("CRL %s: %v", u, err)
		}
		data, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		cancel()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("CRL %s: HTTP %d %v", u, resp.StatusCode, err)
		}
		if b, _ := pem.Decode(data); b != nil {
			data = b.Bytes
		}
		crl, err := x509.ParseRevocationList(data)
		if err != nil {
			t.Fatalf("CRL %s: %v", u, err)
		}
		for _, e := range crl.RevokedCertificateEntries {
			out[e.SerialNumber.String()] = true
		}
	}
	return out
}

func userSerial(t *testing.T, lab *labenv.Env, user string) *big.Int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(lab.UsersDir, user, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s's cert.pem holds no PEM block", user)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber
}
