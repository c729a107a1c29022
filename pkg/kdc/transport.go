package kdc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"

	"github.com/segmesh/segmesh/pkg/dnssrv"
)

// Defaults used when the matching Config field is zero.
const (
	DefaultTimeout       = 5 * time.Second
	DefaultMaxConcurrent = 32
	DefaultMaxReplySize  = 1 << 20
	DefaultPenalty       = 30 * time.Second
	// DefaultRefresh is how long KDCs found in DNS are used before DNS is
	// asked again.
	DefaultRefresh = 5 * time.Minute
	// udpMaxRequest is the largest request sent over UDP when UDP is on
	// (MIT's udp_preference_limit default).
	udpMaxRequest = 1465
)

// Exchanger sends one Kerberos request to a realm and returns the reply. A
// KRB-ERROR reply is returned as a *KRBError, an unanswered request as an
// *UnreachableError. *Transport implements it; tests and metrics wrap it.
type Exchanger interface {
	Exchange(ctx context.Context, realm string, req []byte) ([]byte, error)
}

// Config configures a Transport.
type Config struct {
	// Realms maps a realm name to its KDC addresses in the order they are
	// tried: host:port, or a host (DC FQDN or IP) meaning port 88. Realm
	// names are matched case-insensitively.
	Realms map[string][]string
	// Timeout bounds one attempt at one KDC address (connect, send and
	// receive). Zero means DefaultTimeout. The caller's context deadline
	// bounds the whole exchange.
	Timeout time.Duration
	// MaxConcurrent limits concurrent exchanges per realm. Zero means
	// DefaultMaxConcurrent.
	MaxConcurrent int
	// MaxReplySize bounds a reply. Zero means DefaultMaxReplySize.
	MaxReplySize int
	// Penalty is how long a KDC address that failed is tried after the
	// others (the configured order is kept otherwise), so a dead DC does not
	// cost a timeout on every exchange. Zero means DefaultPenalty; negative
	// disables it.
	Penalty time.Duration
	// UDP, when true, sends requests that fit in a datagram over UDP first
	// and falls back to TCP at the same KDC when the reply is too big or UDP
	// fails. False means TCP only.
	UDP bool
	// DNS finds the KDCs of a realm configured without addresses by its
	// _kerberos._tcp SRV records; nil makes such a realm an error.
	DNS *dnssrv.Finder
	// Refresh is how long discovered KDCs are used before DNS is asked
	// again (and after every KDC of the realm failed, at the next exchange).
	// Zero means DefaultRefresh.
	Refresh time.Duration
	// Now is the clock for Penalty and Refresh; nil means time.Now.
	Now func() time.Time
	// Dial opens connections. Nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Hooks observe exchanges, for metrics and tests. Nil fields are skipped.
	Hooks Hooks
	// Logger receives debug events (no message contents). Nil discards.
	Logger *slog.Logger
}

// Hooks observe a Transport.
type Hooks struct {
	// OnExchange is called once per Exchange call when it ends.
	OnExchange func(ExchangeInfo)
	// OnAttempt is called after each attempt at one KDC address.
	OnAttempt func(AttemptInfo)
	// OnDiscover is called after each DNS lookup of a realm's KDCs.
	OnDiscover func(DiscoverInfo)
}

// ExchangeInfo describes one finished exchange with a realm.
type ExchangeInfo struct {
	// Realm is the realm as configured.
	Realm string
	// KDC is the address that answered; empty when none did.
	KDC string
	// RequestType is the request's message type (msgtype.KRB_AS_REQ,
	// msgtype.KRB_TGS_REQ), 0 when not recognised.
	RequestType int
	// ReplyType is the reply's message type (msgtype.KRB_AS_REP,
	// KRB_TGS_REP or KRB_ERROR); 0 when there was no reply.
	ReplyType int
	// ErrorCode is the KRB-ERROR code when ReplyType is KRB_ERROR.
	ErrorCode int32
	// Duration includes waiting for the realm's concurrency limit.
	Duration time.Duration
	// Err is the error Exchange returns, nil on success.
	Err error
}

// AttemptInfo describes one attempt at one KDC address.
type AttemptInfo struct {
	// Realm is the realm as configured.
	Realm string
	// Addr is the KDC address tried.
	Addr string
	// Network is "tcp" or "udp".
	Network string
	// Duration of the attempt.
	Duration time.Duration
	// Err is nil when the KDC answered (even with a KRB-ERROR).
	Err error
}

// Transport sends requests to the KDCs of configured realms. It is safe for
// concurrent use. Connections are not kept: each attempt dials, sends one
// request and reads one reply, as KDCs expect.
type Transport struct {
	cfg    Config
	realms map[string]*realm
	log    *slog.Logger
}

type realm struct {
	name string
	sem  chan struct{}
	// discovered realms take their addresses from DNS (discover.go).
	discovered bool
	lookupMu   sync.Mutex // one DNS lookup at a time

	mu         sync.Mutex
	addrs      []string             // guarded by mu when discovered
	failed     map[string]time.Time // address -> last failure
	answer     dnssrv.Answer        // the last DNS answer that gave addresses
	resolvedAt time.Time            // when answer was taken; zero: never
	stale      bool                 // every KDC failed: ask DNS again
}

// order returns the addresses to try: those without a recent failure first,
// each group in the configured order.
func (r *realm) order(now time.Time, penalty time.Duration) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if penalty <= 0 || len(r.failed) == 0 {
		return r.addrs
	}
	out := make([]string, 0, len(r.addrs))
	var later []string
	for _, a := range r.addrs {
		if t, ok := r.failed[a]; ok && now.Sub(t) < penalty {
			later = append(later, a)
		} else {
			out = append(out, a)
		}
	}
	return append(out, later...)
}

func (r *realm) mark(addr string, failed bool, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if failed {
		r.failed[addr] = now
	} else {
		delete(r.failed, addr)
	}
}

// New validates cfg and returns a Transport. It does no I/O.
func New(cfg Config) (*Transport, error) {
	if len(cfg.Realms) == 0 {
		return nil, errors.New("kdc: no realm configured")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.MaxReplySize <= 0 {
		cfg.MaxReplySize = DefaultMaxReplySize
	}
	if cfg.Penalty == 0 {
		cfg.Penalty = DefaultPenalty
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = d.DialContext
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Transport{cfg: cfg, realms: make(map[string]*realm, len(cfg.Realms)), log: log}
	for name, addrs := range cfg.Realms {
		key := strings.ToUpper(name)
		if _, dup := t.realms[key]; dup {
			return nil, fmt.Errorf("kdc: realm %s configured twice (names are case-insensitive)", name)
		}
		if len(addrs) == 0 {
			if cfg.DNS == nil {
				return nil, fmt.Errorf("kdc: realm %s has no KDC address", name)
			}
			t.realms[key] = &realm{name: name, discovered: true, sem: make(chan struct{}, cfg.MaxConcurrent), failed: make(map[string]time.Time)}
			continue
		}
		norm := make([]string, len(addrs))
		for i, a := range addrs {
			na, err := normalizeAddr(a)
			if err != nil {
				return nil, fmt.Errorf("kdc: realm %s: KDC address %q: %w", name, a, err)
			}
			norm[i] = na
		}
		t.realms[key] = &realm{
			name:   name,
			addrs:  norm,
			sem:    make(chan struct{}, cfg.MaxConcurrent),
			failed: make(map[string]time.Time),
		}
	}
	return t, nil
}

// normalizeAddr returns host:port, adding the Kerberos port 88 to a bare
// host name or IP address.
func normalizeAddr(a string) (string, error) {
	if a == "" || strings.TrimSpace(a) != a {
		return "", errors.New("empty or padded address")
	}
	if _, port, err := net.SplitHostPort(a); err == nil {
		if port == "" {
			return "", errors.New("empty port")
		}
		return a, nil
	}
	host := strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
	if strings.ContainsAny(host, "/[] ") {
		return "", errors.New("not a host or host:port")
	}
	return net.JoinHostPort(host, "88"), nil
}

// Realms returns the configured realm names in upper case.
func (t *Transport) Realms() []string {
	out := make([]string, 0, len(t.realms))
	for k := range t.realms {
		out = append(out, k)
	}
	return out
}

// Exchange sends req to the realm's KDCs in the configured order (a KDC that
// failed within Penalty goes last) and returns the first reply. A
// connection failure, timeout, KDC_ERR_SVC_UNAVAILABLE or a reply that is not
// the answer to req (not Kerberos, the wrong message type, a KRB-ERROR that
// does not decode) moves on to the next KDC; any other KRB-ERROR is returned
// as *KRBError without failover.
// When every KDC failed, or ctx ended, it returns *UnreachableError.
func (t *Transport) Exchange(ctx context.Context, realmName string, req []byte) (reply []byte, err error) {
	start := time.Now()
	r, ok := t.realms[strings.ToUpper(realmName)]
	info := ExchangeInfo{Realm: realmName, RequestType: MessageType(req)}
	defer func() {
		if t.cfg.Hooks.OnExchange == nil {
			return
		}
		info.Duration = time.Since(start)
		info.Err = err
		if err == nil {
			info.ReplyType = MessageType(reply)
		}
		var ke *KRBError
		if errors.As(err, &ke) {
			info.ReplyType = msgtype.KRB_ERROR
			info.ErrorCode = ke.Code()
			info.KDC = ke.KDC
		}
		t.cfg.Hooks.OnExchange(info)
	}()
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrUnknownRealm, realmName)
	}
	info.Realm = r.name
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, &UnreachableError{Realm: r.name, Cause: ctx.Err()}
	}
	defer func() { <-r.sem }()

	if r.discovered {
		if err := t.discover(ctx, r); err != nil {
			return nil, &UnreachableError{Realm: r.name, Discovery: err, Cause: ctxErr(ctx)}
		}
	}
	var attempts []*AttemptError
	for _, addr := range r.order(t.cfg.Now(), t.cfg.Penalty) {
		if ctxErr(ctx) != nil {
			break
		}
		b, aerr := t.tryKDC(ctx, r, addr, req)
		if aerr == nil {
			rep, err := t.classify(r, addr, info.RequestType, b)
			var ke *KRBError
			if err == nil || errors.As(err, &ke) && ke.Code() != errorcode.KDC_ERR_SVC_UNAVAILABLE {
				r.mark(addr, false, t.cfg.Now())
				info.KDC = addr
				return rep, err
			}
			// A reply that is not the answer to this request (a KRB-ERROR
			// that does not decode, another message type, not Kerberos at
			// all) counts as a failed attempt, and so does
			// KDC_ERR_SVC_UNAVAILABLE, as in MIT's sendto_kdc: the next
			// KDC may answer.
			aerr = []*AttemptError{{Addr: addr, Network: "tcp", Err: err}}
		}
		if ctxErr(ctx) == nil {
			// A failure caused by the caller's deadline says nothing about
			// the KDC.
			r.mark(addr, true, t.cfg.Now())
		}
		attempts = append(attempts, aerr...)
		t.log.DebugContext(ctx, "kdc attempt failed", "realm", r.name, "kdc", addr, "error", aerr[len(aerr)-1].Err)
	}
	if r.discovered && ctxErr(ctx) == nil {
		r.setStale()
	}
	return nil, &UnreachableError{Realm: r.name, Attempts: attempts, Cause: ctxErr(ctx)}
}

// ctxErr is ctx.Err, also reporting a deadline that has passed but whose
// timer has not fired yet (a connection deadline can fire first).
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// tryKDC makes the UDP (when enabled) and TCP attempts at one address.
func (t *Transport) tryKDC(ctx context.Context, r *realm, addr string, req []byte) ([]byte, []*AttemptError) {
	var errs []*AttemptError
	if t.cfg.UDP && len(req) <= udpMaxRequest {
		b, err := t.attempt(ctx, r, "udp", addr, req)
		if err == nil && !isTooBig(b) {
			return b, nil
		}
		if err != nil {
			errs = append(errs, &AttemptError{Addr: addr, Network: "udp", Err: err})
		}
		if ctx.Err() != nil {
			return nil, errs
		}
	}
	b, err := t.attempt(ctx, r, "tcp", addr, req)
	if err != nil {
		return nil, append(errs, &AttemptError{Addr: addr, Network: "tcp", Err: err})
	}
	return b, nil
}

func (t *Transport) attempt(ctx context.Context, r *realm, network, addr string, req []byte) (b []byte, err error) {
	start := time.Now()
	if h := t.cfg.Hooks.OnAttempt; h != nil {
		defer func() {
			h(AttemptInfo{Realm: r.name, Addr: addr, Network: network, Duration: time.Since(start), Err: err})
		}()
	}
	actx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	conn, err := t.cfg.Dial(actx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	// Closing the connection when the context ends unblocks reads that a
	// deadline alone would not (a cancel without a deadline).
	stop := context.AfterFunc(actx, func() { _ = conn.Close() })
	defer stop()
	if dl, ok := actx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if network == "udp" {
		b, err = t.roundTripUDP(conn, req)
	} else {
		b, err = t.roundTripTCP(conn, req)
	}
	if err != nil {
		if cerr := ctxErr(actx); cerr != nil {
			// Report the timeout or cancellation rather than "use of closed
			// network connection".
			return nil, fmt.Errorf("%w (%v)", cerr, err)
		}
	}
	return b, err
}

func (t *Transport) roundTripTCP(conn net.Conn, req []byte) ([]byte, error) {
	msg := make([]byte, 4+len(req))
	binary.BigEndian.PutUint32(msg, uint32(len(req)))
	copy(msg[4:], req)
	if _, err := conn.Write(msg); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, fmt.Errorf("read length: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n&0x80000000 != 0 {
		return nil, errors.New("reply length has the reserved high bit set")
	}
	if n == 0 || int64(n) > int64(t.cfg.MaxReplySize) {
		return nil, fmt.Errorf("reply length %d outside 1..%d", n, t.cfg.MaxReplySize)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(conn, b); err != nil {
		return nil, fmt.Errorf("read reply: %w", err)
	}
	return b, nil
}

func (t *Transport) roundTripUDP(conn net.Conn, req []byte) ([]byte, error) {
	if _, err := conn.Write(req); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	buf := make([]byte, 65536)
	n, err := conn.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("read reply: %w", err)
	}
	if n == 0 {
		return nil, errors.New("empty reply")
	}
	return buf[:n:n], nil
}

// classify turns a KRB-ERROR reply into *KRBError and refuses a reply that
// is not the answer to a request of type reqType: an AS-REQ is answered by an
// AS-REP, a TGS-REQ by a TGS-REP (any KDC reply when reqType is not
// recognised). The caller decodes the reply it returns.
func (t *Transport) classify(r *realm, addr string, reqType int, b []byte) ([]byte, error) {
	got := MessageType(b)
	if got == msgtype.KRB_ERROR {
		var m messages.KRBError
		if err := m.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("kdc: realm %s: KDC %s sent a KRB-ERROR that does not decode: %w", r.name, addr, err)
		}
		return nil, &KRBError{Realm: r.name, KDC: addr, Msg: m}
	}
	want := map[int]int{msgtype.KRB_AS_REQ: msgtype.KRB_AS_REP, msgtype.KRB_TGS_REQ: msgtype.KRB_TGS_REP}[reqType]
	if got == 0 || want != 0 && got != want || want == 0 && got != msgtype.KRB_AS_REP && got != msgtype.KRB_TGS_REP {
		return nil, &ReplyTypeError{Realm: r.name, KDC: addr, Want: want, Got: got}
	}
	return b, nil
}

func isTooBig(b []byte) bool {
	if MessageType(b) != msgtype.KRB_ERROR {
		return false
	}
	var m messages.KRBError
	return m.Unmarshal(b) == nil && m.ErrorCode == errorcode.KRB_ERR_RESPONSE_TOO_BIG
}

// MessageType returns the Kerberos message type of an encoded message from
// its ASN.1 application tag (for example msgtype.KRB_TGS_REQ for 0x6c,
// msgtype.KRB_ERROR for 0x7e), or 0 when b does not start with one.
func MessageType(b []byte) int {
	if len(b) == 0 || b[0]&0xe0 != 0x60 || b[0]&0x1f == 0x1f {
		return 0
	}
	switch tag := int(b[0] & 0x1f); tag {
	case msgtype.KRB_AS_REQ, msgtype.KRB_AS_REP, msgtype.KRB_TGS_REQ, msgtype.KRB_TGS_REP,
		msgtype.KRB_AP_REQ, msgtype.KRB_AP_REP, msgtype.KRB_ERROR:
		return tag
	default:
		return 0
	}
}
