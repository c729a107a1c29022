package kdc

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// fakeTGSReq and fakeTGSRep start with the application tags of a TGS-REQ
// and a TGS-REP; the transport does not look further.
var (
	fakeTGSReq = []byte{0x6c, 0x03, 0x02, 0x01, 0x05}
	fakeTGSRep = []byte{0x6d, 0x03, 0x02, 0x01, 0x05}
)

// server is a loopback TCP listener acting as a KDC.
type server struct {
	ln      net.Listener
	handle  func(req []byte) []byte // nil reply: hang until the client goes away
	calls   atomic.Int32
	active  atomic.Int32
	maxSeen atomic.Int32
	wg      sync.WaitGroup
}

func newServer(tb testing.TB, handle func(req []byte) []byte) *server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &server{ln: ln, handle: handle}
	s.wg.Add(1)
	go s.serve()
	tb.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

func (s *server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			var hdr [4]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			req := make([]byte, binary.BigEndian.Uint32(hdr[:]))
			if _, err := io.ReadFull(c, req); err != nil {
				return
			}
			s.calls.Add(1)
			// Active until the reply is written (or the hang ends): once the
			// client has the reply it frees its slot, and the next exchange
			// may arrive before this goroutine's deferred calls run.
			n := s.active.Add(1)
			var ended sync.Once
			end := func() { ended.Do(func() { s.active.Add(-1) }) }
			defer end()
			for {
				m := s.maxSeen.Load()
				if n <= m || s.maxSeen.CompareAndSwap(m, n) {
					break
				}
			}
			rep := s.handle(req)
			if rep == nil {
				// Hang: wait for the client to close.
				_, _ = io.Copy(io.Discard, c)
				return
			}
			out := make([]byte, 4+len(rep))
			binary.BigEndian.PutUint32(out, uint32(len(rep)))
			copy(out[4:], rep)
			end()
			_, _ = c.Write(out)
		}()
	}
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func krbErrorBytes(tb testing.TB, code int32) []byte {
	tb.Helper()
	m := messages.NewKRBError(types.PrincipalName{NameType: 2, NameString: []string{"krbtgt", "TEST.REALM"}}, "TEST.REALM", code, "e-text")
	b, err := m.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func echo(req []byte) []byte { return fakeTGSRep }

func newTransport(tb testing.TB, cfg Config) *Transport {
	tb.Helper()
	tr, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

func TestExchange(t *testing.T) {
	okSrv := newServer(t, echo)
	errSrv := newServer(t, func([]byte) []byte { return krbErrorBytes(t, errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN) })
	hang := newServer(t, func([]byte) []byte { return nil })
	garbage := newServer(t, func([]byte) []byte { return []byte{0x7e, 0x01, 0x00} })
	notKerberos := newServer(t, func([]byte) []byte { return []byte("HTTP/1.1 400 Bad Request\r\n\r\n") })
	wrongType := newServer(t, func([]byte) []byte { return []byte{0x6b, 0x03, 0x02, 0x01, 0x05} }) // an AS-REP to a TGS-REQ
	unavailable := newServer(t, func([]byte) []byte { return krbErrorBytes(t, errorcode.KDC_ERR_SVC_UNAVAILABLE) })
	dead := deadAddr(t)

	tests := []struct {
		name      string
		addrs     []string
		wantReply bool
		wantCode  int32
		wantUnrch bool
		wantKDC   string
	}{
		{name: "answer", addrs: []string{okSrv.addr()}, wantReply: true, wantKDC: okSrv.addr()},
		{name: "dead then alive", addrs: []string{dead, okSrv.addr()}, wantReply: true, wantKDC: okSrv.addr()},
		{name: "hanging then alive", addrs: []string{hang.addr(), okSrv.addr()}, wantReply: true, wantKDC: okSrv.addr()},
		{name: "malformed KRB-ERROR then alive", addrs: []string{garbage.addr(), okSrv.addr()}, wantReply: true, wantKDC: okSrv.addr()},
		{name: "KRB-ERROR does not fail over", addrs: []string{errSrv.addr(), okSrv.addr()}, wantCode: errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, wantKDC: errSrv.addr()},
		{name: "all dead", addrs: []string{dead, dead}, wantUnrch: true},
		// MIT's sendto_kdc moves on after KDC_ERR_SVC_UNAVAILABLE, a reply
		// that is not a Kerberos message, or one of the wrong type.
		{name: "SVC_UNAVAILABLE then alive", addrs: []string{unavailable.addr(), okSrv.addr()}, wantReply: true, wantKDC: okSrv.addr()},
		{name: "not Kerberos then alive", addrs: []string{notKerberos.addr(), okSrv.addr()}, wantReply: true, wantKDC: okSrv.addr()},
		{name: "wrong reply type then alive", addrs: []string{wrongType.addr(), okSrv.addr()}, wantReply: true, wantKDC: okSrv.addr()},
		{name: "only garbage", addrs: []string{notKerberos.addr(), wrongType.addr()}, wantUnrch: true},
		{name: "all SVC_UNAVAILABLE", addrs: []string{unavailable.addr(), unavailable.addr()}, wantUnrch: true, wantCode: errorcode.KDC_ERR_SVC_UNAVAILABLE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var infos []ExchangeInfo
			tr := newTransport(t, Config{
				Realms:  map[string][]string{"TEST.REALM": tt.addrs},
				Timeout: 200 * time.Millisecond,
				Hooks:   Hooks{OnExchange: func(i ExchangeInfo) { infos = append(infos, i) }},
			})
			rep, err := tr.Exchange(context.Background(), "test.realm", fakeTGSReq)
			switch {
			case tt.wantReply:
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				if MessageType(rep) != msgtype.KRB_TGS_REP {
					t.Fatalf("reply type %d", MessageType(rep))
				}
			case tt.wantUnrch:
				var ue *UnreachableError
				if !errors.As(err, &ue) || !ue.Temporary() || len(ue.Attempts) != len(tt.addrs) {
					t.Fatalf("err = %v, want UnreachableError with %d attempts", err, len(tt.addrs))
				}
				var ke *KRBError
				if got := errors.As(err, &ke); got != (tt.wantCode != 0) || got && ke.Code() != tt.wantCode {
					t.Fatalf("err = %v, want the last KDC's code %d inside", err, tt.wantCode)
				}
				return
			case tt.wantCode != 0:
				var ke *KRBError
				if !errors.As(err, &ke) || ke.Code() != tt.wantCode {
					t.Fatalf("err = %v, want KRBError %d", err, tt.wantCode)
				}
			}
			if len(infos) != 1 {
				t.Fatalf("OnExchange called %d times", len(infos))
			}
			if infos[0].RequestType != msgtype.KRB_TGS_REQ || infos[0].KDC != tt.wantKDC || infos[0].ErrorCode != tt.wantCode {
				t.Fatalf("info = %+v", infos[0])
			}
		})
	}
}

func TestFailedKDCGoesLast(t *testing.T) {
	hang := newServer(t, func([]byte) []byte { return nil })
	ok := newServer(t, echo)
	dead := deadAddr(t)
	for _, penalty := range []time.Duration{0, -1} {
		var attempts []AttemptInfo
		tr := newTransport(t, Config{
			Realms: map[string][]string{"R": {hang.addr(), dead, ok.addr()}}, Timeout: 100 * time.Millisecond, Penalty: penalty,
			Hooks: Hooks{OnAttempt: func(a AttemptInfo) { attempts = append(attempts, a) }},
		})
		for range 3 {
			if _, err := tr.Exchange(context.Background(), "R", fakeTGSReq); err != nil {
				t.Fatal(err)
			}
		}
		want := 3 + 2 // first exchange tries all three, then straight to the good one
		if penalty < 0 {
			want = 9
		}
		if len(attempts) != want {
			t.Fatalf("penalty %v: %d attempts, want %d", penalty, len(attempts), want)
		}
	}
}

func TestKRBErrorStopsFailover(t *testing.T) {
	errSrv := newServer(t, func([]byte) []byte { return krbErrorBytes(t, errorcode.KDC_ERR_BADOPTION) })
	second := newServer(t, echo)
	tr := newTransport(t, Config{Realms: map[string][]string{"R": {errSrv.addr(), second.addr()}}})
	_, err := tr.Exchange(context.Background(), "R", fakeTGSReq)
	var ke *KRBError
	if !errors.As(err, &ke) || ke.Code() != errorcode.KDC_ERR_BADOPTION {
		t.Fatalf("err = %v", err)
	}
	if n := second.calls.Load(); n != 0 {
		t.Fatalf("second KDC got %d requests after a KRB-ERROR", n)
	}
}

func TestContextDeadlineNoLeak(t *testing.T) {
	hang := newServer(t, func([]byte) []byte { return nil })
	before := runtime.NumGoroutine()
	tr := newTransport(t, Config{Realms: map[string][]string{"R": {hang.addr()}}, Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := tr.Exchange(ctx, "R", fakeTGSReq)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %T, want *UnreachableError", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("exchange took %v despite a 100ms deadline", d)
	}
	// The server side goroutine ends when the client closes; poll until the
	// goroutine count is back.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: before %d, now %d\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func([]byte) []byte { <-release; return fakeTGSRep })
	tr := newTransport(t, Config{Realms: map[string][]string{"R": {srv.addr()}}, MaxConcurrent: 2})
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := tr.Exchange(context.Background(), "R", fakeTGSReq)
			errs <- err
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.active.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("two exchanges never became active")
		}
		time.Sleep(time.Millisecond)
	}
	// A waiting caller honours its context.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, err := tr.Exchange(ctx, "R", fakeTGSReq)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting exchange: err = %v", err)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m := srv.maxSeen.Load(); m != 2 {
		t.Fatalf("max concurrent at the KDC = %d, want 2", m)
	}
}

func TestUDPFallsBackToTCP(t *testing.T) {
	tcp := newServer(t, echo)
	// A UDP KDC on the same port that says the reply is too big.
	pc, err := net.ListenPacket("udp", tcp.addr())
	if err != nil {
		t.Skipf("cannot bind UDP on %s: %v", tcp.addr(), err)
	}
	defer pc.Close()
	var udpCalls atomic.Int32
	tooBig := krbErrorBytes(t, errorcode.KRB_ERR_RESPONSE_TOO_BIG)
	go func() {
		buf := make([]byte, 2048)
		for {
			_, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			udpCalls.Add(1)
			_, _ = pc.WriteTo(tooBig, a)
		}
	}()
	var attempts []AttemptInfo
	tr := newTransport(t, Config{Realms: map[string][]string{"R": {tcp.addr()}}, UDP: true,
		Hooks: Hooks{OnAttempt: func(a AttemptInfo) { attempts = append(attempts, a) }}})
	rep, err := tr.Exchange(context.Background(), "R", fakeTGSReq)
	if err != nil || MessageType(rep) != msgtype.KRB_TGS_REP {
		t.Fatalf("rep %x err %v", rep, err)
	}
	if udpCalls.Load() != 1 || tcp.calls.Load() != 1 || len(attempts) != 2 || attempts[0].Network != "udp" || attempts[1].Network != "tcp" {
		t.Fatalf("udp %d tcp %d attempts %+v", udpCalls.Load(), tcp.calls.Load(), attempts)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no realms", Config{}},
		{"no address", Config{Realms: map[string][]string{"R": nil}}},
		{"bad address", Config{Realms: map[string][]string{"R": {"kdc.example:"}}}},
		{"padded address", Config{Realms: map[string][]string{"R": {" kdc.example"}}}},
		{"duplicate realm", Config{Realms: map[string][]string{"R": {"a:88"}, "r": {"b:88"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("want error")
			}
		})
	}
	tr := newTransport(t, Config{Realms: map[string][]string{"R": {"127.0.0.1:1"}}})
	if _, err := tr.Exchange(context.Background(), "OTHER", fakeTGSReq); !errors.Is(err, ErrUnknownRealm) {
		t.Fatalf("unknown realm: %v", err)
	}
}

func TestDefaultPort(t *testing.T) {
	tr := newTransport(t, Config{Realms: map[string][]string{"R": {"dc1.lab.test", "127.0.0.2", "::1", "[::1]", "h:8888"}}})
	want := []string{"dc1.lab.test:88", "127.0.0.2:88", "[::1]:88", "[::1]:88", "h:8888"}
	got := tr.realms["R"].addrs
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("addresses %v, want %v", got, want)
		}
	}
}

func TestMessageType(t *testing.T) {
	tests := []struct {
		in   []byte
		want int
	}{
		{nil, 0},
		{[]byte{0x6a}, msgtype.KRB_AS_REQ},
		{[]byte{0x6b}, msgtype.KRB_AS_REP},
		{[]byte{0x6c}, msgtype.KRB_TGS_REQ},
		{[]byte{0x6d}, msgtype.KRB_TGS_REP},
		{[]byte{0x7e}, msgtype.KRB_ERROR},
		{[]byte{0x30}, 0},
		{[]byte{0x7f}, 0},
		{[]byte{0x61}, 0},
	}
	for _, tt := range tests {
		if got := MessageType(tt.in); got != tt.want {
			t.Errorf("MessageType(%x) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func FuzzClassify(f *testing.F) {
	f.Add(krbErrorBytes(f, errorcode.KDC_ERR_BADOPTION))
	f.Add(fakeTGSRep)
	f.Add([]byte{0x7e, 0x80})
	f.Add([]byte{0x7e, 0x84, 0xff, 0xff, 0xff, 0xff})
	tr := newTransport(f, Config{Realms: map[string][]string{"R": {"127.0.0.1:1"}}})
	r := tr.realms["R"]
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := tr.classify(r, "x:88", msgtype.KRB_TGS_REQ, b)
		if err == nil && MessageType(b) != msgtype.KRB_TGS_REP {
			t.Fatalf("message type %d passed as the reply to a TGS-REQ", MessageType(b))
		}
		if err != nil && rep != nil {
			t.Fatal("reply and error both set")
		}
		var ke *KRBError
		if errors.As(err, &ke) {
			_ = ke.Error()
		}
	})
}
