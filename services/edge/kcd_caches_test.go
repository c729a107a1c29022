package edge

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
	"google.golang.org/grpc/codes"

	"github.com/segmesh/segmesh/pkg/negotiate"
	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// KCD authentication's caches and calls (kcd_identity.go, kcd_tickets.go,
// kcd_negotiate.go), with counting fakes in place of the roles.

// countingTickets is a ticketSource that counts calls and can block them.
type countingTickets struct {
	calls   atomic.Int64
	release chan struct{}
	err     error
	end     time.Duration
	now     func() time.Time
}

func (c *countingTickets) GetServiceTicket(ctx context.Context, upn, spn string) (*Ticket, error) {
	c.calls.Add(1)
	if c.release != nil {
		select {
		case <-c.release:
		case <-ctx.Done():
			return nil, ticketErrorOf(statusErr(codes.DeadlineExceeded, ctx.Err().Error()))
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	return &Ticket{DER: []byte("t"), SessionKey: []byte("k"), CName: upn, EndTime: c.now().Add(c.end)}, nil
}

func (c *countingTickets) Invalidate(context.Context, string, string) error { return nil }

type constNegotiator struct{}

func (constNegotiator) header(negotiate.Binding) (string, time.Time, error) {
	return "Negotiate x", time.Time{}, nil
}

func (constNegotiator) verifyReply(string, time.Time) error { return nil }

func fakeFactory(*Ticket) (negotiator, error) { return constNegotiator{}, nil }

func TestTicketCacheOneRPCForConcurrentMisses(t *testing.T) {
	src := &countingTickets{release: make(chan struct{}), end: 10 * time.Hour, now: time.Now}
	c := newTicketCache(src, fakeFactory, 5*time.Minute, time.Minute, 100, time.Now)
	var wg sync.WaitGroup
	entries := make([]*ticketEntry, 50)
	for i := range entries {
		wg.Go(func() {
			e, _, err := c.get(context.Background(), "alice@lab.test", "HTTP/mail")
			if err != nil {
				t.Error(err)
			}
			entries[i] = e
		})
	}
	waitFor(t, "the first call", func() bool { return src.calls.Load() == 1 })
	close(src.release)
	wg.Wait()
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("%d RPCs for 50 concurrent misses, want 1", n)
	}
	for _, e := range entries {
		if e != entries[0] {
			t.Fatal("callers got different entries")
		}
	}
	if _, hit, _ := c.get(context.Background(), "alice@lab.test", "HTTP/mail"); !hit {
		t.Fatal("second lookup missed the cache")
	}
}

func TestTicketErrorClassification(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		unavailable bool
		status      int
	}{
		{"KDC unreachable", statusErr(codes.Unavailable, "dial tcp: refused"), true, 503},
		{"deadline", statusErr(codes.DeadlineExceeded, "slow KDC"), true, 503},
		{"principal unknown", kdcError(codes.NotFound, 6, "KDC_ERR_C_PRINCIPAL_UNKNOWN", "hint"), false, 403},
		{"not delegable", kdcError(codes.PermissionDenied, 13, "KDC_ERR_BADOPTION", "hint"), false, 403},
		{"internal with KDC code", kdcError(codes.Internal, 41, "KRB_AP_ERR_MODIFIED", "hint"), false, 403},
		{"internal without KDC code", statusErr(codes.Internal, "boom"), true, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := ticketErrorOf(tt.err)
			if te.Unavailable != tt.unavailable {
				t.Fatalf("Unavailable = %v, want %v", te.Unavailable, tt.unavailable)
			}
			if f := failureOf(te, 30); f.Status != tt.status {
				t.Fatalf("status %d, want %d", f.Status, tt.status)
			}
		})
	}
	if te := ticketErrorOf(kdcError(codes.NotFound, 6, "KDC_ERR_C_PRINCIPAL_UNKNOWN", "add altSecurityIdentities")); te.Hint != "add altSecurityIdentities" || te.Code != 6 {
		t.Fatalf("detail lost: %+v", te)
	}
}

func TestNegotiatorFreshAuthenticator(t *testing.T) {
	ft := newFakeTickets()
	resp, err := ft.GetServiceTicket(context.Background(), &ticketv1.GetServiceTicketRequest{UserPrincipal: "bob.smith@lab.test", TargetSpn: "HTTP/mail.lab.test"})
	if err != nil {
		t.Fatal(err)
	}
	tk := &Ticket{DER: resp.GetTicketDer(), SessionKey: resp.GetSessionKey(), Etype: 18, CName: resp.GetClientName(), CNameType: 10, CRealm: "LAB.TEST"}
	at := time.Date(2026, 11, 25, 13, 0, 0, 123456000, time.UTC)
	n, err := newNegotiatorFactory(func() time.Time { return at })(tk)
	if err != nil {
		t.Fatal(err)
	}
	h1, _, err := n.header(negotiate.Binding{})
	if err != nil {
		t.Fatal(err)
	}
	h2, _, _ := n.header(negotiate.Binding{})
	if h1 == h2 {
		t.Fatal("two headers are identical: the authenticator is not fresh")
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(h1, "Negotiate "))
	var tok spnego.SPNEGOToken
	if err := tok.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	var k5 spnego.KRB5Token
	if err := k5.Unmarshal(tok.NegTokenInit.MechTokenBytes); err != nil {
		t.Fatal(err)
	}
	if err := k5.APReq.DecryptAuthenticator(types.EncryptionKey{KeyType: 18, KeyValue: tk.SessionKey}); err != nil {
		t.Fatal(err)
	}
	a := k5.APReq.Authenticator
	if a.CRealm != "LAB.TEST" || a.CName.NameType != 10 || a.CName.NameString[0] != "bob.smith@lab.test" {
		t.Fatalf("authenticator names %v@%s, want the reply's cname and crealm", a.CName, a.CRealm)
	}
	if !a.CTime.Equal(at.Truncate(time.Second)) || a.Cusec != 123456 {
		t.Fatalf("ctime %v cusec %d, want the injected time", a.CTime, a.Cusec)
	}
	if len(a.Cksum.Checksum) != 24 || a.Cksum.CksumType != 0x8003 {
		t.Fatalf("GSS checksum %x type %d", a.Cksum.Checksum, a.Cksum.CksumType)
	}
}

func TestHungTicketRoleTimesOut(t *testing.T) {
	hung := &countingTickets{release: make(chan struct{}), end: time.Hour, now: time.Now}
	t.Cleanup(func() { close(hung.release) })
	h := newHarness(t, nil, options{tickets: hung, tune: func(c *Config) { c.RPCTimeout = 100 * time.Millisecond }})
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	resp, _ := get(t, h.client(&cert, false), h.url(syncPath), nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "30" {
		t.Fatalf("status %d Retry-After %q, want 503 and 30", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

type countingIdentity struct{ calls atomic.Int64 }

func (c *countingIdentity) MapCertificate(context.Context, []byte, [][]byte) (Identity, error) {
	c.calls.Add(1)
	return Identity{UPN: "alice@lab.test"}, nil
}

func TestIdentityCacheTTL(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	src := &countingIdentity{}
	c := newIdentityCache(src, 15*time.Minute, time.Minute, 2, func() time.Time { return now })
	fp := [32]byte{1}
	for i, want := range []bool{false, true} {
		if _, hit, err := c.lookup(context.Background(), fp, nil, nil); err != nil || hit != want {
			t.Fatalf("lookup %d: hit=%v err=%v, want hit=%v", i, hit, err, want)
		}
	}
	now = now.Add(16 * time.Minute)
	if _, hit, _ := c.lookup(context.Background(), fp, nil, nil); hit {
		t.Fatal("expired mapping served")
	}
	for i := range 5 { // bounded
		_, _, _ = c.lookup(context.Background(), [32]byte{byte(10 + i)}, nil, nil)
	}
	if n := c.len(); n > 2 {
		t.Fatalf("cache holds %d entries, bound is 2", n)
	}
	if src.calls.Load() != 7 {
		t.Fatalf("calls = %d, want 7", src.calls.Load())
	}
}
