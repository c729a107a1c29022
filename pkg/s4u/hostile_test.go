package s4u_test

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
	"github.com/segmesh/segmesh/pkg/s4u"
)

// tamper is an Exchanger that hands every request to the fake KDC and lets
// a test rewrite the reply (a hostile KDC or network path).
type tamper struct {
	k   *kdctest.KDC
	fix func(tb testing.TB, req, rep []byte) []byte
	tb  testing.TB
}

func (x *tamper) Exchange(ctx context.Context, realm string, req []byte) ([]byte, error) {
	rep := x.k.Handle(req)
	if x.fix != nil {
		rep = x.fix(x.tb, req, rep)
	}
	if kdc.MessageType(rep) == msgtype.KRB_ERROR {
		var m messages.KRBError
		if err := m.Unmarshal(rep); err != nil {
			return nil, err
		}
		return nil, &kdc.KRBError{Realm: realm, KDC: "fake", Msg: m}
	}
	return rep, nil
}

// TestTamperedTGTServerName: an AS-REP whose ticket (in clear) names a
// one-component server used to panic the background TGT refresh of a
// cross-realm user (SName.NameString[1]) and kill the process.
func TestTamperedTGTServerName(t *testing.T) {
	k := kdctest.Start(t, labConfig())
	x := &tamper{k: k, tb: t, fix: func(tb testing.TB, req, rep []byte) []byte {
		if kdc.MessageType(rep) != msgtype.KRB_AS_REP {
			return rep
		}
		var m messages.ASRep
		if err := m.Unmarshal(rep); err != nil {
			tb.Error(err)
			return rep
		}
		m.Ticket.SName.NameString = []string{"krbtgt"}
		b, err := m.Marshal()
		if err != nil {
			tb.Error(err)
			return rep
		}
		return b
	}}
	c := newClient(t, x, func(cfg *s4u.Config) { cfg.Domains = []string{"CHILD.LAB.TEST"} })
	defer c.Wait()
	_, err := c.ServiceTicket(context.Background(), "alice@child.lab.test", target)
	if err == nil || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("err = %v, want the tampered server name refused", err)
	}
}

// TestProxyReplyServerChecked: an S4U2Proxy reply for another service than
// the SPN asked is refused (the ticket would be sent to Exchange for a
// service it is not for, or be a downgrade to a weaker account).
func TestProxyReplyServerChecked(t *testing.T) {
	cfg := labConfig()
	cfg.ProxyAnswers = map[string]string{target: "HTTP/other.lab.test"}
	k := kdctest.Start(t, cfg)
	c := newClient(t, k, nil)
	_, err := c.ServiceTicket(context.Background(), "alice", target)
	if err == nil || !strings.Contains(err.Error(), "HTTP/other.lab.test") {
		t.Fatalf("err = %v, want the reply for another server refused", err)
	}
}

// rewriteIterations rewrites the s2kparams of the PREAUTH_REQUIRED reply's
// ETYPE-INFO2 (the KRB-ERROR is not authenticated).
func rewriteIterations(params string) func(tb testing.TB, req, rep []byte) []byte {
	return func(tb testing.TB, req, rep []byte) []byte {
		var m messages.KRBError
		if kdc.MessageType(rep) != msgtype.KRB_ERROR || m.Unmarshal(rep) != nil || m.ErrorCode != errorcode.KDC_ERR_PREAUTH_REQUIRED {
			return rep
		}
		var md types.PADataSequence
		if err := md.Unmarshal(m.EData); err != nil {
			tb.Error(err)
			return rep
		}
		p, _ := hex.DecodeString(params)
		for i, pa := range md {
			if pa.PADataType != patype.PA_ETYPE_INFO2 {
				continue
			}
			var info types.ETypeInfo2
			if err := info.Unmarshal(pa.PADataValue); err != nil {
				tb.Error(err)
				return rep
			}
			for j := range info {
				info[j].S2KParams = p
			}
			b, err := marshalETypeInfo2(info)
			if err != nil {
				tb.Error(err)
				return rep
			}
			md[i].PADataValue = b
		}
		ed, err := marshalPAData(md)
		if err != nil {
			tb.Error(err)
			return rep
		}
		m.EData = ed
		b, err := m.Marshal()
		if err != nil {
			tb.Error(err)
			return rep
		}
		return b
	}
}

func TestIterationCountFromKDC(t *testing.T) {
	tests := []struct {
		name    string
		params  string
		timeout time.Duration
		want    func(error) bool
	}{
		// 2^32-1 iterations would be hours of CPU.
		{"2^32-1 refused", "ffffffff", time.Minute, func(err error) bool { return err != nil && strings.Contains(err.Error(), "iterations") }},
		{"2^24 refused like MIT", "01000000", time.Minute, func(err error) bool { return err != nil && strings.Contains(err.Error(), "iterations") }},
		// 2^24-1 is accepted but stops with the refresh's context.
		{"2^24-1 stops with the context", "00ffffff", 50 * time.Millisecond, func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := kdctest.Start(t, labConfig())
			x := &tamper{k: k, tb: t, fix: rewriteIterations(tt.params)}
			c := newClient(t, x, func(cfg *s4u.Config) { cfg.RefreshTimeout = tt.timeout })
			defer c.Wait()
			_, err := c.TGT(context.Background(), realm)
			if !tt.want(err) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// skewedClock is the KDC's clock: the client's plus an offset.
type skewedClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (s *skewedClock) now() time.Time { s.mu.Lock(); defer s.mu.Unlock(); return time.Now().Add(s.off) }
func (s *skewedClock) set(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.off = d
}

// TestSkewRetriedWithKDCTime: KRB_AP_ERR_SKEW carries the KDC's time; the
// client retries once with it, in the AS exchange and in a TGS exchange
// (MIT does the same).
func TestSkewRetriedWithKDCTime(t *testing.T) {
	kc := &skewedClock{off: time.Hour}
	cfg := labConfig()
	cfg.Now = kc.now
	k := kdctest.Start(t, cfg)
	var codes []int32
	var mu sync.Mutex
	c := newClient(t, k, func(cfg *s4u.Config) {
		cfg.Hooks.OnExchange = func(stage s4u.Stage, realm string, err error) {
			var ke *s4u.KDCError
			if errors.As(err, &ke) {
				mu.Lock()
				codes = append(codes, ke.Code)
				mu.Unlock()
			}
		}
	})
	if _, err := c.TGT(context.Background(), realm); err != nil {
		t.Fatalf("AS exchange with the KDC an hour ahead: %v", err)
	}
	// The KDC's clock moves again: the S4U2Self TGS-REQ meets the skew.
	kc.set(time.Hour + 20*time.Minute)
	tk, err := c.ServiceTicket(context.Background(), "alice", target)
	if err != nil {
		t.Fatalf("S4U with the KDC 80 minutes ahead: %v", err)
	}
	checkTicket(t, k, tk, "alice", realm)
	mu.Lock()
	defer mu.Unlock()
	skews := 0
	for _, c := range codes {
		if c == errorcode.KRB_AP_ERR_SKEW {
			skews++
		}
	}
	if skews != 2 {
		t.Fatalf("KDC errors %v: want one skew in the AS and one in the TGS exchange", codes)
	}
}

// TestTGSAuthenticatorTimesIncrease: with a clock that does not move, the
// TGS-REQ authenticators of concurrent S4U exchanges never share a (ctime,
// cusec): a KDC's replay cache would refuse the second.
func TestTGSAuthenticatorTimesIncrease(t *testing.T) {
	frozen := time.Now()
	cfg := labConfig()
	cfg.Now = func() time.Time { return frozen }
	k := kdctest.Start(t, cfg)
	c := newClient(t, k, func(cfg *s4u.Config) { cfg.Now = func() time.Time { return frozen } })
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.ServiceTicket(context.Background(), "alice", target); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	seen := map[time.Time]bool{}
	for _, kind := range []kdctest.Kind{kdctest.KindS4U2Self, kdctest.KindS4U2Proxy} {
		for _, r := range k.Requests(kind) {
			if seen[r.AuthenticatorTime] {
				t.Fatalf("authenticator time %v sent twice", r.AuthenticatorTime)
			}
			seen[r.AuthenticatorTime] = true
		}
	}
	if len(seen) != 16 {
		t.Fatalf("%d distinct authenticator times, want 16", len(seen))
	}
}

func TestEtype20Refused(t *testing.T) {
	_, err := s4u.New(s4u.Config{Realm: realm, Service: "svc_seg", Password: "x", Exchanger: &tamper{}, Etypes: []int32{20, 18}})
	if err == nil || !strings.Contains(err.Error(), "aes256-cts-hmac-sha384-192") {
		t.Fatalf("err = %v", err)
	}
}

func marshalETypeInfo2(info types.ETypeInfo2) ([]byte, error) { return asn1.Marshal(info) }

func marshalPAData(md types.PADataSequence) ([]byte, error) { return asn1.Marshal(md) }
