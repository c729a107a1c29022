//go:build lab

package s4u_test

import (
	"context"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/s4u"
)

// TestLabMITRenew runs the S4U pair and the renewal path end to end against
// the lab's MIT krb5kdc (lab.sh up --with-mit: realm MIT.TEST, LDAP backend,
// krbAllowedToDelegateTo and +ok_to_auth_as_delegate on svc_seg), the KDC
// that renews service tickets where Samba refuses (TestLabRenew). The
// renewed ticket is accepted by the Exchange stand-in.
func TestLabMITRenew(t *testing.T) {
	f := lab(t)
	if f["LAB_MIT_REALM"] == "" {
		if os.Getenv("SEGMESH_LAB_REQUIRE_MIT") == "1" { // CI (.ci/run)
			t.Fatal("the MIT realm is not up: deploy/lab/lab.sh up --with-mit")
		}
		t.Skip("the MIT realm is not up: deploy/lab/lab.sh up --with-mit")
	}
	realm := f["LAB_MIT_REALM"]
	var exchanges atomic.Int32
	tr, err := kdc.New(kdc.Config{Realms: map[string][]string{realm: {f["LAB_MIT_KDC"]}}, Timeout: 5 * time.Second,
		Hooks: kdc.Hooks{OnAttempt: func(kdc.AttemptInfo) { exchanges.Add(1) }}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s4u.New(s4u.Config{Realm: realm, Service: f["LAB_MIT_SVC_USER"], Password: f.secret(t, "LAB_SVC_PASSWORD_FILE"), Exchanger: tr})
	if err != nil {
		t.Fatal(err)
	}
	kt, err := keytab.Load(f["LAB_MIT_EXCHANGE_KEYTAB"])
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tk, err := c.ServiceTicket(ctx, "alice", f["LAB_MIT_TARGET_SPN"])
	if err != nil {
		t.Fatalf("S4U pair against MIT %s: %v", f["LAB_MIT_VERSION"], err)
	}
	t.Logf("pair: %d KDC exchanges (the service account's AS exchange, S4U2Self, S4U2Proxy); ticket %s, end %v, renew-till %v",
		exchanges.Load(), tk.ClientString(), tk.EndTime, tk.RenewTill)
	if !tk.Renewable(time.Now()) {
		t.Fatalf("S4U2Proxy ticket not renewable: flags %x renew-till %v", tk.Flags.Bytes, tk.RenewTill)
	}
	// One second later, so the renewed ticket's times differ.
	time.Sleep(1100 * time.Millisecond)
	before := exchanges.Load()
	n, err := c.Renew(ctx, tk)
	if err != nil {
		t.Fatalf("MIT refused to renew the S4U2Proxy ticket: %v", err)
	}
	if got := exchanges.Load() - before; got != 1 {
		t.Errorf("renewal took %d KDC exchanges, want 1", got)
	}
	if n.ClientString() != tk.ClientString() || !n.RenewTill.Equal(tk.RenewTill) || !n.EndTime.After(tk.EndTime) {
		t.Fatalf("renewed ticket: client %s end %v renew-till %v; old: %s end %v renew-till %v",
			n.ClientString(), n.EndTime, n.RenewTill, tk.ClientString(), tk.EndTime, tk.RenewTill)
	}
	var dec messages.Ticket
	if err := dec.Unmarshal(n.DER); err != nil {
		t.Fatal(err)
	}
	if err := dec.DecryptEncPart(kt, nil); err != nil {
		t.Fatalf("renewed ticket does not decrypt with the MIT Exchange keytab: %v", err)
	}
	g := labFacts{"LAB_EXCHANGE_URL": f["LAB_MIT_EXCHANGE_URL"]}
	if code, body := acceptedByExchange(t, g, n); code != http.StatusOK {
		t.Fatalf("Exchange stand-in answered %d to the renewed MIT ticket: %s", code, body)
	}
	t.Logf("renewed: end %v (was %v), renew-till %v; accepted by Apache", n.EndTime, tk.EndTime, n.RenewTill)
}
