package framingtest

import (
	"bufio"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func TestAccepted(t *testing.T) {
	for _, tc := range []struct {
		name    string
		raw     string
		targets []string // of the accepted requests
		end     End
	}{
		{"one whole request, open", post(Sync, "Content-Length: 5\r\n", "hello"), []string{Sync}, Open},
		{"cut in the body", post(Sync, "Content-Length: 9\r\n", "hello"), nil, Open},
		{"cut in the header", "GET " + Sync + " HTTP/1.1\r\nHost: e", nil, Open},
		{"sentinel closes", Sentinel + Sentinel, []string{SentinelTarget}, Closed},
		{"two lengths refused", post(Sync, "Content-Length: 0\r\nContent-Length: 48\r\n", hidden), nil, Refused},
		{"missing Host refused", "GET " + Sync + " HTTP/1.1\r\n\r\n", nil, Refused},
		{"duplicate Host refused", post(Sync, "Host: a\r\nContent-Length: 0\r\n", ""), nil, Refused},
		{"malformed Host refused", "GET " + Sync + " HTTP/1.1\r\nHost: a/b\r\n\r\n", nil, Refused},
		{"Expect other refused", post(Sync, "Expect: 200-ok\r\nContent-Length: 0\r\n", ""), nil, Refused},
		{"bad chunk refused after the first", post(Sync, "Content-Length: 0\r\n", "") + post(Sync, "Transfer-Encoding: chunked\r\n", "zz\r\n"), []string{Sync}, Refused},
		{"HTTP/1.0 closes", "GET " + Sync + " HTTP/1.0\r\n\r\n" + Sentinel, []string{Sync}, Closed},
		{"HTTP/2 refused", "GET " + Sync + " HTTP/2.0\r\nHost: e\r\n\r\n", nil, Refused},
		{"CRLF after a POST skipped", post(Sync, "Content-Length: 0\r\n", "") + "\r\n" + Sentinel, []string{Sync, SentinelTarget}, Closed},
		{"absolute form as origin form", "GET https://edge.lab.test/EWS/x?a=1 HTTP/1.1\r\nHost: edge.lab.test\r\n\r\n", []string{"/EWS/x?a=1"}, Open},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqs, end, refusal := Accepted([]byte(tc.raw))
			var got []string
			for _, r := range reqs {
				got = append(got, r.Target)
			}
			if strings.Join(got, " ") != strings.Join(tc.targets, " ") || end != tc.end {
				t.Errorf("Accepted = %q, %v (%v); want %q, %v", got, end, refusal, tc.targets, tc.end)
			}
			if (end == Refused) != (refusal != nil) {
				t.Errorf("end %v with refusal %v", end, refusal)
			}
		})
	}
}

func TestSame(t *testing.T) {
	want := Request{Method: "POST", Target: "/a?x=1;y=2", Framing: Chunked, Body: []byte("hi")}
	v, _ := url.ParseQuery("x=1;y=2")
	for _, tc := range []struct {
		name string
		got  Request
		same bool
	}{
		{"identical", want, true},
		{"query re-encoded as ReverseProxy does", Request{Method: "POST", Target: "/a?" + v.Encode(), Framing: Chunked, Body: []byte("hi")}, true},
		{"other method", Request{Method: "PUT", Target: want.Target, Framing: Chunked, Body: []byte("hi")}, false},
		{"other path", Request{Method: "POST", Target: "/b?x=1;y=2", Framing: Chunked, Body: []byte("hi")}, false},
		{"other framing", Request{Method: "POST", Target: want.Target, Framing: Length, Body: []byte("hi")}, false},
		{"other body", Request{Method: "POST", Target: want.Target, Framing: Chunked, Body: []byte("ho")}, false},
	} {
		if got := Same(want, tc.got); got != tc.same {
			t.Errorf("%s: Same = %v, want %v", tc.name, got, tc.same)
		}
	}
	empty := Request{Method: "GET", Target: "/", Framing: Chunked}
	if !Same(empty, Request{Method: "GET", Target: "/", Framing: Length}) {
		t.Error("an empty chunked body sent as Content-Length: 0 is not Same")
	}
}

// naiveRelay is an engine that parses nothing: it adds X-Forwarded-For
// after the device's request line and copies the bytes both ways, as a
// careless proxy would. The test must catch it.
func naiveRelay(t *testing.T, upstream string) Dial {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			dev, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer dev.Close()
				up, err := net.Dial("tcp", strings.TrimPrefix(upstream, "http://"))
				if err != nil {
					return
				}
				defer up.Close()
				br := bufio.NewReader(dev)
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				ip, _, _ := net.SplitHostPort(dev.RemoteAddr().String())
				_, _ = io.WriteString(up, line+"X-Forwarded-For: "+ip+"\r\n")
				go func() { _, _ = io.Copy(up, br); _ = up.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(dev, up)
			})
		}
	})
	return func(local net.IP) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: local}}
		return d.Dial("tcp", ln.Addr().String())
	}
}

// TestRunCatchesANaiveRelay: the seeds that smuggle a request past
// net/http's framing produce findings through a relay that does not parse,
// and a plain request through it reaches the capture with no finding.
func TestRunCatchesANaiveRelay(t *testing.T) {
	if err := Supported(); err != nil {
		t.Skip(err)
	}
	c, err := NewCapture()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	dial := naiveRelay(t, c.URL())
	seeds := map[string]string{}
	for _, s := range Seeds() {
		seeds[s.Name] = s.Raw
	}
	for _, tc := range []struct {
		seed     string
		findings bool
	}{
		{"plain CL", false},
		{"CL and TE", true},
		{"two CLs", true},
		{"obs-fold of TE", true},
		{"bare LF line ends", true},
		{"NUL in a header value", true},
	} {
		t.Run(tc.seed, func(t *testing.T) {
			res, err := c.Run(dial, []byte(seeds[tc.seed]))
			if err != nil {
				t.Fatal(err)
			}
			if got := len(res.Findings) > 0; got != tc.findings {
				t.Errorf("findings %v, want some: %v", res.Findings, tc.findings)
			}
			if !tc.findings && len(res.Reached) == 0 {
				t.Error("nothing reached the capture")
			}
		})
	}
}
