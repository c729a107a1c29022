// Package dnstest is a tiny authoritative DNS server on 127.0.0.1 for
// tests: SRV and A records set by the test, answered over UDP with
// golang.org/x/net/dns/dnsmessage (already in the module graph through
// gRPC), so pkg/dnssrv and pkg/kdc are tested against Go's real resolver
// speaking the real wire.
package dnstest

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// SRV is one SRV record.
type SRV struct {
	// Target is the host the record names.
	Target string
	// Port, Priority and Weight are the record's.
	Port, Priority, Weight uint16
}

// Server is a running fake DNS server. Its methods are safe for concurrent
// use.
type Server struct {
	conn    net.PacketConn
	mu      sync.Mutex
	srv     map[string][]SRV
	a       map[string][]net.IP
	queries atomic.Int64
}

// Start runs a server on 127.0.0.1 (a free UDP port) until the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("dnstest: %v", err)
	}
	s := &Server{conn: conn, srv: map[string][]SRV{}, a: map[string][]net.IP{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve()
	}()
	tb.Cleanup(func() {
		_ = conn.Close()
		<-done
	})
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.conn.LocalAddr().String() }

// Queries returns how many queries the server has answered.
func (s *Server) Queries() int64 { return s.queries.Load() }

// SetSRV replaces the SRV records of name (_kerberos._tcp.REALM); none
// removes them (NXDOMAIN).
func (s *Server) SetSRV(name string, records ...SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv[canon(name)] = records
}

// SetA replaces the A records of host.
func (s *Server) SetA(host string, ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []net.IP
	for _, ip := range ips {
		list = append(list, net.ParseIP(ip).To4())
	}
	s.a[canon(host)] = list
}

// Record publishes a server listening at addr (ip:port) under host (an A
// record) and returns an SRV record naming it with the given priority and
// weight, for SetSRV.
func (s *Server) Record(tb testing.TB, host, addr string, priority, weight uint16) SRV {
	tb.Helper()
	ip, port, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatalf("dnstest: %v", err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		tb.Fatalf("dnstest: %v", err)
	}
	s.SetA(host, ip)
	return SRV{Target: host, Port: uint16(p), Priority: priority, Weight: weight}
}

func canon(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) + "." }

func (s *Server) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if out, err := s.answer(buf[:n]); err == nil {
			_, _ = s.conn.WriteTo(out, from)
		}
	}
}

func (s *Server) answer(req []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	s.queries.Add(1)
	name := strings.ToLower(q.Name.String())
	s.mu.Lock()
	srvs, haveSRV := s.srv[name]
	ips, haveA := s.a[name]
	s.mu.Unlock()
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !haveSRV && !haveA || haveSRV && len(srvs) == 0 {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	switch q.Type {
	case dnsmessage.TypeSRV:
		for _, r := range srvs {
			target, err := dnsmessage.NewName(canon(r.Target))
			if err != nil {
				return nil, err
			}
			if err := b.SRVResource(rr, dnsmessage.SRVResource{Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: target}); err != nil {
				return nil, err
			}
		}
	case dnsmessage.TypeA:
		for _, ip := range ips {
			var a dnsmessage.AResource
			copy(a.A[:], ip)
			if err := b.AResource(rr, a); err != nil {
				return nil, err
			}
		}
	}
	return b.Finish()
}
