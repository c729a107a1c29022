package s4u_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
	"github.com/segmesh/segmesh/pkg/s4u"
)

func TestRenewServiceTicket(t *testing.T) {
	clk, k, c := clockedClient(t, nil)
	ctx := context.Background()
	tk, err := c.ServiceTicket(ctx, "alice@lab.test", target)
	if err != nil {
		t.Fatal(err)
	}
	if !tk.Renewable(clk.Now()) || !tk.RenewTill.Equal(clk.Now().Add(7*24*time.Hour)) {
		t.Fatalf("S4U2Proxy ticket renewable=%v renew-till %v", tk.Renewable(clk.Now()), tk.RenewTill)
	}
	clk.Add(9 * time.Hour)
	n, err := c.Renew(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	checkTicket(t, k, n, "alice@lab.test", realm)
	if !n.StartTime.Equal(clk.Now()) || n.Lifetime() != tk.Lifetime() || !n.RenewTill.Equal(tk.RenewTill) {
		t.Fatalf("renewed: start %v end %v renew-till %v", n.StartTime, n.EndTime, n.RenewTill)
	}
	if !n.Forwardable() {
		t.Fatal("renewal dropped the forwardable flag")
	}
	if string(n.SessionKey.KeyValue) == string(tk.SessionKey.KeyValue) {
		t.Fatal("renewed ticket kept the session key")
	}
	r := k.Requests(kdctest.KindRenew)
	if len(r) != 1 || !types.IsFlagSet(&r[0].KDCOptions, flags.Renew) || !types.IsFlagSet(&r[0].KDCOptions, flags.Forwardable) ||
		r[0].SName.NameString[0] != "HTTP" || r[0].AdditionalTickets != 0 {
		t.Fatalf("renew request %+v", r)
	}
	// Renewed a minute before each end, the ticket lasts until its
	// renew-till and the last renewal stops there.
	renewals := 1
	for n.Renewable(clk.Now()) {
		clk.Add(n.EndTime.Sub(clk.Now()) - time.Minute)
		if n, err = c.Renew(ctx, n); err != nil {
			t.Fatal(err)
		}
		renewals++
	}
	if renewals != 16 {
		t.Fatalf("%d renewals in 7 days of 10-hour tickets (the first after 9 h), want 16", renewals)
	}
	if !n.EndTime.Equal(tk.RenewTill) {
		t.Fatalf("last renewal ends %v, want renew-till %v", n.EndTime, tk.RenewTill)
	}
}

func TestRenewRefused(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
	cfg := labConfig()
	cfg.Now = clk.Now
	cfg.RefuseServiceRenewal = true
	k, err := kdctest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var stages []s4u.Stage
	c := newClient(t, k, func(c *s4u.Config) {
		c.Now = clk.Now
		c.Hooks.OnExchange = func(st s4u.Stage, _ string, _ error) { stages = append(stages, st) }
	})
	ctx := context.Background()
	tk, err := c.ServiceTicket(ctx, "alice", target)
	if err != nil {
		t.Fatal(err)
	}
	var ke *s4u.KDCError
	if _, err := c.Renew(ctx, tk); !errors.As(err, &ke) || ke.Code != errorcode.KDC_ERR_POLICY || ke.Stage != s4u.StageRenew {
		t.Fatalf("err = %v, want KDC_ERR_POLICY at renew", err)
	}
	// The TGT is still renewed: Heimdal refuses only other tickets.
	tgt, err := c.TGT(ctx, realm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Renew(ctx, tgt); err != nil {
		t.Fatal(err)
	}
	if want := []s4u.Stage{s4u.StageASReq, s4u.StageASReq, s4u.StageS4U2Self, s4u.StageS4U2Proxy, s4u.StageRenew, s4u.StageRenewTGT}; !equalStages(stages, want) {
		t.Fatalf("exchanges %v, want %v", stages, want)
	}
	// Not renewable: no exchange.
	clk.Add(11 * time.Hour)
	if _, err := c.Renew(ctx, tk); !errors.Is(err, s4u.ErrNotRenewable) {
		t.Fatalf("expired ticket: err = %v", err)
	}
	if len(stages) != 6 {
		t.Fatalf("an expired ticket was sent to the KDC")
	}
}

// TestRenewSambaRecorded feeds the KRB-ERROR the lab's Samba KDC answered
// to the renewal of an S4U2Proxy ticket (TestLabRenew) back to Renew.
func TestRenewSambaRecorded(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "samba", "renew-s4u2proxy-refused.der"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := kdctest.New(labConfig())
	if err != nil {
		t.Fatal(err)
	}
	x := exchangerFunc(func(ctx context.Context, r string, req []byte) ([]byte, error) {
		var m messages.TGSReq
		if m.Unmarshal(req) == nil && types.IsFlagSet(&m.ReqBody.KDCOptions, flags.Renew) && m.ReqBody.SName.NameString[0] != "krbtgt" {
			var e messages.KRBError
			if err := e.Unmarshal(b); err != nil {
				return nil, err
			}
			return nil, &kdc.KRBError{Realm: r, KDC: "recorded", Msg: e}
		}
		return k.Exchange(ctx, r, req)
	})
	c := newClient(t, x, nil)
	tk, err := c.ServiceTicket(context.Background(), "alice", target)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Renew(context.Background(), tk)
	var ke *s4u.KDCError
	if !errors.As(err, &ke) || ke.Code != errorcode.KDC_ERR_POLICY || s4u.IsTemporary(err) {
		t.Fatalf("err = %v", err)
	}
}

func TestRenewWrongClient(t *testing.T) {
	k, err := kdctest.New(labConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, k, nil)
	tk, err := c.ServiceTicket(context.Background(), "alice", target)
	if err != nil {
		t.Fatal(err)
	}
	k.SetWrongClient(kdctest.KindRenew, true)
	if _, err := c.Renew(context.Background(), tk); !errors.Is(err, s4u.ErrWrongClient) {
		t.Fatalf("err = %v, want ErrWrongClient", err)
	}
}

type exchangerFunc func(ctx context.Context, realm string, req []byte) ([]byte, error)

func (f exchangerFunc) Exchange(ctx context.Context, realm string, req []byte) ([]byte, error) {
	return f(ctx, realm, req)
}

func equalStages(a, b []s4u.Stage) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkRenew measures one renewal (one TGS exchange) of an S4U2Proxy
// ticket against the fake KDC, beside BenchmarkS4U's pair.
func BenchmarkRenew(b *testing.B) { benchFakeKDC(b, benchRenew) }

func benchRenew(b *testing.B, c *s4u.Client) {
	ctx := context.Background()
	tk, err := c.ServiceTicket(ctx, "bob.smith@lab.test", target)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start, n := cpuTime(), 0
	for b.Loop() {
		if _, err := c.Renew(ctx, tk); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if used := cpuTime() - start; used > 0 && n > 0 {
		b.ReportMetric(float64(used.Nanoseconds())/float64(n), "cpu-ns/op")
	}
}

// TestTicketsEndWithTheirTGT checks the fake KDC's RFC 4120 cap (which the
// lab's Samba applies too): a ticket from the TGS ends no later than the TGT
// it was issued with, and its renew-till likewise; and that a pair renews a
// TGT older than PairTGTMaxAge first, so its tickets get a full lifetime.
func TestTicketsEndWithTheirTGT(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
	cfg := labConfig()
	cfg.Now = clk.Now
	k, err := kdctest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, k, func(c *s4u.Config) { c.Now = clk.Now })
	ctx := context.Background()
	self, err := c.S4U2Self(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := c.TGT(ctx, realm)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(3 * time.Hour)
	proxy, err := c.S4U2Proxy(ctx, self, target)
	if err != nil {
		t.Fatal(err)
	}
	if !proxy.EndTime.Equal(tgt.EndTime) || !proxy.RenewTill.Equal(tgt.RenewTill) {
		t.Fatalf("S4U2Proxy with a 3-hour-old TGT ends %v (renew-till %v), want the TGT's %v (%v)",
			proxy.EndTime, proxy.RenewTill, tgt.EndTime, tgt.RenewTill)
	}
	pair, err := c.ServiceTicket(ctx, "alice", target)
	if err != nil {
		t.Fatal(err)
	}
	if pair.Lifetime() != 10*time.Hour {
		t.Fatalf("a pair after the TGT's first hour lives %v, want 10h (the TGT renewed first)", pair.Lifetime())
	}
}
