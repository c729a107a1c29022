//go:build lab

package s4u_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/s4u"
)

// labClientAs is labClient for another of the lab's service accounts
// (svc_seg's password: the delegation variants of lab.sh); mods adjust the
// client's configuration before it is built.
func labClientAs(t *testing.T, f labFacts, service string, mods ...func(*s4u.Config)) *s4u.Client {
	t.Helper()
	tr, err := kdc.New(kdc.Config{Realms: map[string][]string{f["LAB_REALM"]: {f["LAB_KDC_DIRECT"]}}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cfg := s4u.Config{Realm: f["LAB_REALM"], Service: service, Password: f.secret(t, "LAB_SVC_PASSWORD_FILE"), Exchanger: tr}
	for _, mod := range mods {
		mod(&cfg)
	}
	c, err := s4u.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// or returns f[key], or def when an older lab.sh wrote lab.json (the lab is
// shared: any tree's lab.sh may rewrite it).
func (f labFacts) or(key, def string) string {
	if v := f[key]; v != "" {
		return v
	}
	return def
}

// sambaSeries is the lab's Samba series: LAB_SAMBA_SERIES, else what lab.sh
// recorded at provisioning (samba/.series), else 4.17 (a lab.sh from before
// the series was recorded).
func sambaSeries(f labFacts) string {
	if s := f["LAB_SAMBA_SERIES"]; s != "" {
		return s
	}
	if b, err := os.ReadFile(filepath.Join(f["LAB_DIR"], "samba", ".series")); err == nil && len(b) > 0 {
		return strings.TrimSpace(string(b))
	}
	return "4.17"
}

// sambaAtLeast reports whether the lab's Samba series is at least 4.minor.
func sambaAtLeast(f labFacts, minor int) bool {
	var maj, min int
	if _, err := fmt.Sscanf(sambaSeries(f), "%d.%d", &maj, &min); err != nil {
		maj, min = 4, 17
	}
	return maj > 4 || maj == 4 && min >= minor
}

// TestLabDelegationKinds: the three ways a service account can be set up
// for delegation to Exchange, against the lab's KDC. RBCD alone serves
// (Samba 4.19+); neither kind gets BADOPTION with a hint naming both
// settings; "Kerberos only" delegation gives a non-forwardable S4U2Self
// ticket and BADOPTION with the protocol-transition hint.
func TestLabDelegationKinds(t *testing.T) {
	f := lab(t)
	rbcd := sambaAtLeast(f, 19)
	tests := []struct {
		name, service string
		served        bool
		forwardable   bool     // the S4U2Self ticket
		hint          []string // of the S4U2Proxy refusal
	}{
		{"classic with protocol transition", f["LAB_SVC_USER"], true, true, nil},
		{"RBCD only", f.or("LAB_SVC_RBCD", "svc_rbcd"), rbcd, true, []string{"msDS-AllowedToActOnBehalfOfOtherIdentity"}},
		{"neither kind", f.or("LAB_SVC_NODELEG", "svc_nodeleg"), false, true,
			[]string{"msDS-AllowedToDelegateTo", "Use any authentication protocol", "msDS-AllowedToActOnBehalfOfOtherIdentity", "samba-tool delegation add-principal"}},
		{"Kerberos only", f.or("LAB_SVC_KONLY", "svc_konly"), false, false, []string{"not forwardable", "Use Kerberos only", "for-any-protocol"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := labClientAs(t, f, tt.service)
			ctx := context.Background()
			self, err := c.S4U2Self(ctx, "alice")
			if err != nil {
				t.Fatalf("S4U2Self: %v", err)
			}
			if self.Forwardable() != tt.forwardable {
				t.Fatalf("S4U2Self ticket forwardable = %v, want %v", self.Forwardable(), tt.forwardable)
			}
			tk, err := c.S4U2Proxy(ctx, self, f["LAB_TARGET_SPN"])
			if tt.served {
				if err != nil {
					t.Fatalf("S4U2Proxy: %v", err)
				}
				if code, body := acceptedByExchange(t, f, tk); code != http.StatusOK {
					t.Fatalf("Exchange stand-in answered %d: %s", code, body)
				}
				return
			}
			var ke *s4u.KDCError
			if !errors.As(err, &ke) || ke.Code != 13 || ke.Stage != s4u.StageS4U2Proxy {
				t.Fatalf("err = %v, want KDC_ERR_BADOPTION at s4u2proxy (Samba %s)", err, sambaSeries(f))
			}
			t.Logf("Samba %s: %v", sambaSeries(f), err)
			if ke.NotForwardable == tt.forwardable {
				t.Errorf("NotForwardable = %v with a forwardable = %v evidence ticket", ke.NotForwardable, tt.forwardable)
			}
			for _, h := range tt.hint {
				if !strings.Contains(ke.Hint, h) {
					t.Errorf("hint lacks %q: %s", h, ke.Hint)
				}
			}
		})
	}
}
