package main

import (
	"log/slog"
	"net"
	"sort"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/framingtest"
)

// fastEngine serves the proxy's handler on a loopback port (plain TCP: the
// framing is fasthttp's parser's, TLS adds nothing to it) in front of a
// capture Exchange.
func fastEngine(tb testing.TB) (*framingtest.Capture, framingtest.Dial) {
	tb.Helper()
	if err := framingtest.Supported(); err != nil {
		tb.Skip(err)
	}
	c, err := framingtest.NewCapture()
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := newProxy(strings.TrimPrefix(c.URL(), "http://"), 64, 64, false, slog.New(slog.DiscardHandler)).server()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Shutdown(); <-done; _ = c.Close() })
	return c, func(local net.IP) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: local}}
		return d.Dial("tcp", ln.Addr().String())
	}
}

// fastDivergences are the seeds whose framing fasthttp v1.79.0 reads
// otherwise than net/http (docs/benchmarks.md, issue 25, "fasthttp"):
// requests net/http refuses that fasthttp forwards, and chunked bodies it
// forwards with a Content-Length. A change of fasthttp that changes them
// fails here, and the review must be read again.
var fastDivergences = []string{
	"Expect other", "Expect other (Ping)", // 417 in net/http
	"HTTP/0.9 version", "HTTP/1.2", // forwarded with the device's version
	"TE identity", "TE identity (Ping)", // 501 in net/http; no body for fasthttp
	"bad escape in the path", // 400 in net/http
	"chunk extension", "chunk extension (Ping)", "chunk size with spaces", "chunk size with spaces (Ping)",
	"leading CRLF",                                                       // RFC 9112 section 2.2 lets a server skip it; net/http does after a POST only
	"plain chunked", "plain chunked (Ping)", "trailer", "trailer (Ping)", // sent with a Content-Length
	"quote in Host",          // 400 in net/http
	"space in a header name", // 400 in net/http; forwarded as sent
}

// TestFastFramingSeeds runs the seed corpus through fasthttp's server and
// HostClient: what it forwards that net/http would not, or otherwise
// framed, is exactly fastDivergences.
func TestFastFramingSeeds(t *testing.T) {
	c, dial := fastEngine(t)
	var diverging []string
	for _, s := range framingtest.Seeds() {
		res, err := c.Run(dial, framingtest.WithSentinel([]byte(s.Raw)))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Findings) > 0 || res.Held {
			diverging = append(diverging, s.Name)
			t.Logf("%s: held %v, net/http %v %v, findings %v", s.Name, res.Held, res.End, res.Refusal, res.Findings)
		}
	}
	sort.Strings(diverging)
	want := append([]string(nil), fastDivergences...)
	sort.Strings(want)
	if strings.Join(diverging, "|") != strings.Join(want, "|") {
		t.Errorf("fasthttp diverges from net/http on\n%q\nwant\n%q", diverging, want)
	}
}
