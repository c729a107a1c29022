// Package otlptest is a fake OTLP/gRPC trace collector on 127.0.0.1 for
// tests: it keeps every export (as JSON and a span count) and the first
// byte of every connection, so a test sees both what the exporter sent and
// whether it spoke TLS. pkg/telemetry's tests and the lab's secret search
// (test/security) use it.
package otlptest

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/encoding/protojson"
)

// TLSRecord is the first byte of a TLS handshake; a plaintext gRPC client
// starts with 'P' (the HTTP/2 preface).
const TLSRecord = 0x16

// Collector is a running fake collector.
type Collector struct {
	coltracepb.UnimplementedTraceServiceServer
	// Addr is its host:port, for segmesh.telemetry.otlpEndpoint.
	Addr string

	exports chan int
	first   chan byte

	mu     sync.Mutex
	text   strings.Builder
	spans  int
	refuse error
}

// Refuse makes every export fail with err (a gRPC status error, for
// example codes.PermissionDenied, which the exporter does not retry) until
// Refuse(nil).
func (c *Collector) Refuse(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refuse = err
}

// Start serves a Collector until the test ends: over TLS with cert when it
// is not nil, in plaintext otherwise.
func Start(tb testing.TB, cert *tls.Certificate) *Collector {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	c := &Collector{Addr: l.Addr().String(), exports: make(chan int, 64), first: make(chan byte, 64)}
	var opts []grpc.ServerOption
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12})))
	}
	s := grpc.NewServer(opts...)
	coltracepb.RegisterTraceServiceServer(s, c)
	go func() { _ = s.Serve(&sniffListener{Listener: l, first: c.first}) }()
	tb.Cleanup(s.Stop)
	return c
}

// Export keeps an export, or refuses it (Refuse).
func (c *Collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	refuse := c.refuse
	c.mu.Unlock()
	if refuse != nil {
		return nil, refuse
	}
	b, err := protojson.Marshal(req)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	c.mu.Lock()
	c.text.Write(b)
	c.text.WriteByte('\n')
	c.spans += n
	c.mu.Unlock()
	select {
	case c.exports <- n:
	default:
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// Exports delivers the span count of each export (the first 64 unread).
func (c *Collector) Exports() <-chan int { return c.exports }

// FirstBytes delivers the first byte each connection sent (TLSRecord for
// TLS), the first 64 unread.
func (c *Collector) FirstBytes() <-chan byte { return c.first }

// Text returns every export so far as JSON, one a line.
func (c *Collector) Text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.text.String()
}

// Spans returns how many spans it has received.
func (c *Collector) Spans() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.spans
}

// sniffListener sends the first byte each accepted connection reads.
type sniffListener struct {
	net.Listener
	first chan byte
}

func (l *sniffListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: c, first: l.first}, nil
}

type sniffConn struct {
	net.Conn
	first chan byte
	once  sync.Once
}

func (c *sniffConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.once.Do(func() {
			select {
			case c.first <- b[0]:
			default:
			}
		})
	}
	return n, err
}
