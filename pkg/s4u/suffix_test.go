package s4u_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
	"github.com/segmesh/segmesh/pkg/s4u"
)

// TestUnmappedSuffix: a UPN on a suffix that is no configured realm is asked
// of the primary realm's KDC as an enterprise name (AD resolves alternative
// UPN suffixes itself); when the KDC does not know it, the refusal names the
// suffix, what was tried and the settings that fix it. A suffix of a
// configured realm keeps the KDC's ordinary hint. Issue 23 item 1.
func TestUnmappedSuffix(t *testing.T) {
	cfg := labConfig()
	cfg.UPNs = map[string]string{"alice@lab.test": "alice", "carol@corp.example": "carol"}
	k := kdctest.Start(t, cfg)
	c := newClient(t, k, nil)
	defer c.Wait()

	// An alternative suffix the KDC knows: served, asked of LAB.TEST.
	tk, err := c.ServiceTicket(context.Background(), "carol@corp.example", target)
	if err != nil {
		t.Fatalf("carol@corp.example: %v", err)
	}
	checkTicket(t, k, tk, "carol@corp.example", realm)
	if reqs := k.Requests(kdctest.KindS4U2Self); len(reqs) == 0 || !strings.EqualFold(reqs[len(reqs)-1].Realm, realm) {
		t.Fatalf("S4U2Self not sent to the primary realm: %+v", reqs)
	}

	tests := []struct {
		user  string
		words []string
		not   []string
	}{
		{"ghost@elsewhere.example", []string{"elsewhere.example is not a configured domain", "KDC of LAB.TEST", "ghost@elsewhere.example",
			"segmesh.identity.upnSuffixRealms", "kcd.domains", "uPNSuffixes"}, nil},
		{"ghost@lab.test", nil, []string{"not a configured domain"}},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			_, err := c.ServiceTicket(context.Background(), tt.user, target)
			var ke *s4u.KDCError
			if !errors.As(err, &ke) || ke.Code != 6 {
				t.Fatalf("err = %v, want KDC_ERR_C_PRINCIPAL_UNKNOWN", err)
			}
			for _, w := range tt.words {
				if !strings.Contains(ke.Hint, w) {
					t.Errorf("hint lacks %q: %s", w, ke.Hint)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(ke.Hint, w) {
					t.Errorf("hint holds %q: %s", w, ke.Hint)
				}
			}
		})
	}
}
