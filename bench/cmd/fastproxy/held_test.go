package main

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkHeldPing reports what fasthttp's server and HostClient keep per
// idle keep-alive connection and per request held open (an EAS Ping
// waiting on Exchange): live Go heap and stacks (runtime.MemStats after
// two GCs), the device connection and the upstream one, plain TCP on both
// sides (TLS adds its own state, as it does for the edge). The backend
// reads each request and never answers.
func BenchmarkHeldPing(b *testing.B) {
	const n = 500
	for range b.N {
		idle, held := heldOnce(b, n)
		b.ReportMetric(idle, "B/idle-conn")
		b.ReportMetric(held, "B/held-ping")
	}
}

// heldOnce opens n device connections to a new proxy, then sends a Ping
// on each, which the backend holds; it returns the bytes in use per open
// idle connection and per held Ping (both sides of the loopback
// connections counted: the devices' side is a few hundred bytes).
func heldOnce(b *testing.B, n int) (idle, held float64) {
	b.Helper()
	var holding atomic.Int64
	var mu sync.Mutex
	var upstream []net.Conn
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			upstream = append(upstream, c)
			mu.Unlock()
			go func() {
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						holding.Add(1)
					}
				}
			}()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := newProxy(backend.Addr().String(), 2100, 2*n, false, slog.New(slog.DiscardHandler)).server()
	go func() { _ = srv.Serve(ln) }()
	ping := "POST /Microsoft-Server-ActiveSync?Cmd=Ping&User=u&DeviceId=D&DeviceType=iPhone HTTP/1.1\r\nHost: e\r\nContent-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: 200\r\n\r\n" + strings.Repeat("x", 200)
	inUse := func() int64 {
		runtime.GC()
		runtime.GC() // and sync.Pool's victim cache
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc + m.StackInuse)
	}
	base := inUse()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
		_ = backend.Close()
		mu.Lock()
		for _, c := range upstream {
			_ = c.Close()
		}
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.ShutdownWithContext(ctx)
	}()
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	open := inUse() - base
	for _, c := range conns {
		if _, err := c.Write([]byte(ping)); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for holding.Load() < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d Pings reached the backend", holding.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return float64(open) / float64(n), float64(inUse()-base) / float64(n)
}
