//go:build lab

package s4u

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/kdc"
)

// TestLabSilentFallback shows the Samba KDC answering an S4U2Proxy request
// sent without cname-in-addl-tkt with a ticket for the service account
// itself, and the guard refusing it.
func TestLabSilentFallback(t *testing.T) {
	f, c := labInternalClient(t)
	ctx := context.Background()
	self, err := c.S4U2Self(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := c.TGT(ctx, c.realm)
	if err != nil {
		t.Fatal(err)
	}
	sname, _, err := c.parseSPN(f["LAB_TARGET_SPN"])
	if err != nil {
		t.Fatal(err)
	}
	r := tgsRequest{
		realm: c.realm, sname: sname, tgt: tgt,
		options:    []int{flags.Forwardable, flags.Renewable, flags.Canonicalize}, // no cname-in-addl-tkt
		additional: []messages.Ticket{self.Ticket},
		now:        c.now(), lifetime: c.cfg.TicketLifetime, renew: c.cfg.RenewLifetime, etypes: c.cfg.Etypes,
	}
	got, err := c.tgsExchange(ctx, StageS4U2Proxy, c.realm, &r)
	if err != nil {
		t.Fatalf("the KDC refused instead of falling back (fine, but not what DESIGN.md recorded): %v", err)
	}
	t.Logf("reply without cname-in-addl-tkt: client %s, server %v", got.ClientString(), got.SName.NameString)
	if !got.CName.Equal(types.PrincipalName{NameString: []string{f["LAB_SVC_USER"]}}) {
		t.Fatalf("expected the silent fallback to the service account, got %s", got.ClientString())
	}
	if err := checkProxyClient(self, got); !errors.Is(err, ErrWrongClient) {
		t.Fatalf("guard: %v", err)
	}
}

// labInternalClient reads the facts lab.sh wrote (lab.json) and returns them
// with a Client for svc_seg at the lab's KDC (not the forwarder).
func labInternalClient(t *testing.T) (map[string]string, *Client) {
	t.Helper()
	dir := os.Getenv("SEGMESH_LAB_DIR")
	if dir == "" {
		dir = "/var/tmp/segmesh-lab"
	}
	raw, err := os.ReadFile(filepath.Join(dir, "lab.json"))
	if err != nil {
		t.Fatalf("lab facts: %v (bring the lab up: bash deploy/lab/lab.sh up)", err)
	}
	var f map[string]string
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if f["LAB_DIR"] == "" {
		f["LAB_DIR"] = dir
	}
	pw, err := os.ReadFile(f["LAB_SVC_PASSWORD_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	tr, err := kdc.New(kdc.Config{Realms: map[string][]string{f["LAB_REALM"]: {f["LAB_KDC_DIRECT"]}}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Realm: f["LAB_REALM"], Service: f["LAB_SVC_USER"], Password: strings.TrimSpace(string(pw)), Exchanger: tr})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

// InstallTGT makes t the realm's current TGT (lab tests: a pair with a TGT
// renewed by the test).
func InstallTGT(c *Client, realm string, t *Ticket) {
	c.tgtMu.Lock()
	defer c.tgtMu.Unlock()
	c.tgts[realm] = &tgtSlot{cur: t}
}
