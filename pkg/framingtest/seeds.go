package framingtest

import "strings"

// Seed is one device input of the seed corpus.
type Seed struct {
	Name string
	Raw  string
}

// Sync and Ping are targets the edge forwards: a Sync goes through the
// reverse proxy, a Ping is parked (the edge's second HTTP/1.1 writer).
const (
	Sync = "/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=FRAME1&DeviceType=iPhone"
	Ping = "/Microsoft-Server-ActiveSync?Cmd=Ping&User=alice&DeviceId=FRAME1&DeviceType=iPhone"
)

// hidden is a request smuggled in a body: a path the edge never forwards.
const hidden = "GET /ecp/ HTTP/1.1\r\nHost: mail.lab.test\r\n\r\n"

// post is a POST to target with the header lines hdr ("Name: value\r\n")
// and body.
func post(target, hdr, body string) string {
	return "POST " + target + " HTTP/1.1\r\nHost: edge.lab.test\r\n" + hdr + "\r\n" + body
}

// Seeds is the seed corpus the issue asks for: Content-Length and
// Transfer-Encoding combinations, obs-fold, bare LF and CR, duplicate
// headers, control bytes, chunk sizes, extensions and trailers, pipelining,
// HTTP/1.0 keep-alive, Expect: 100-continue, absolute-form and spaced
// targets; each on a Sync, and the framing ones on a Ping too.
func Seeds() []Seed {
	framing := []Seed{
		{"plain CL", post(Sync, "Content-Length: 5\r\n", "hello")},
		{"plain chunked", post(Sync, "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n")},
		{"CL and TE", post(Sync, "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"+hidden)},
		{"TE and CL", post(Sync, "Transfer-Encoding: chunked\r\nContent-Length: 48\r\n", "0\r\n\r\n"+hidden)},
		{"TE chunked twice, one field", post(Sync, "Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n"+hidden)},
		{"TE chunked twice, two fields", post(Sync, "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"+hidden)},
		{"TE gzip, chunked", post(Sync, "Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"+hidden)},
		{"TE chunked, identity", post(Sync, "Transfer-Encoding: chunked, identity\r\nContent-Length: 5\r\n", "0\r\n\r\n"+hidden)},
		{"TE identity", post(Sync, "Transfer-Encoding: identity\r\n", "0\r\n\r\n"+hidden)},
		{"TE xchunked", post(Sync, "Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n", "0\r\n\r\n"+hidden)},
		{"TE with a space before the colon", post(Sync, "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n"+hidden)},
		{"TE in upper case", post(Sync, "Transfer-Encoding: CHUNKED\r\n", "0\r\n\r\n"+hidden)},
		{"TE with a tab", post(Sync, "Transfer-Encoding:\tchunked\r\n", "0\r\n\r\n"+hidden)},
		{"two CLs", post(Sync, "Content-Length: 0\r\nContent-Length: 48\r\n", hidden)},
		{"two equal CLs", post(Sync, "Content-Length: 5\r\nContent-Length: 5\r\n", "hello")},
		{"CL list", post(Sync, "Content-Length: 5, 5\r\n", "hello")},
		{"CL list differing", post(Sync, "Content-Length: 0, 48\r\n", hidden)},
		{"negative CL", post(Sync, "Content-Length: -1\r\n", hidden)},
		{"CL with plus", post(Sync, "Content-Length: +5\r\n", "hello")},
		{"huge CL", post(Sync, "Content-Length: 99999999999999999999\r\n", hidden)},
		{"CL in hex", post(Sync, "Content-Length: 0x5\r\n", "hello")},
		{"CL leading zeros", post(Sync, "Content-Length: 005\r\n", "hello")},
		{"oversized chunk size", post(Sync, "Transfer-Encoding: chunked\r\n", "fffffffffffffffff\r\nx\r\n0\r\n\r\n")},
		{"chunk size with 0x", post(Sync, "Transfer-Encoding: chunked\r\n", "0x5\r\nhello\r\n0\r\n\r\n")},
		{"chunk size with spaces", post(Sync, "Transfer-Encoding: chunked\r\n", "5 \r\nhello\r\n0\r\n\r\n")},
		{"chunk extension", post(Sync, "Transfer-Encoding: chunked\r\n", "5;name=value\r\nhello\r\n0\r\n\r\n")},
		{"chunk extension with a bare LF", post(Sync, "Transfer-Encoding: chunked\r\n", "5;a\nb\r\nhello\r\n0\r\n\r\n")},
		{"chunk data longer than its size", post(Sync, "Transfer-Encoding: chunked\r\n", "2\r\nhello\r\n0\r\n\r\n")},
		{"chunk with bare LF ends", post(Sync, "Transfer-Encoding: chunked\r\n", "5\nhello\n0\n\n")},
		{"trailer", post(Sync, "Transfer-Encoding: chunked\r\nTrailer: X-T\r\n", "5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n")},
		{"trailer smuggling a length", post(Sync, "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\nContent-Length: 48\r\n\r\n"+hidden)},
		{"last chunk without final CRLF", post(Sync, "Transfer-Encoding: chunked\r\n", "0\r\n"+hidden)},
		{"body shorter than CL", post(Sync, "Content-Length: 500\r\n", "hello")},
		{"Expect 100-continue", post(Sync, "Expect: 100-continue\r\nContent-Length: 5\r\n", "hello")},
		{"Expect other", post(Sync, "Expect: 200-ok\r\nContent-Length: 5\r\n", "hello")},
		{"pipelined", post(Sync, "Content-Length: 5\r\n", "hello") + post(Sync, "Content-Length: 5\r\n", "world") + "GET " + Sync + " HTTP/1.1\r\nHost: edge.lab.test\r\n\r\n"},
		{"pipelined after a refused path", "GET /ecp/ HTTP/1.1\r\nHost: edge.lab.test\r\n\r\n" + post(Sync, "Content-Length: 5\r\n", "hello")},
	}
	var seeds []Seed
	for _, s := range framing {
		seeds = append(seeds, s, Seed{s.Name + " (Ping)", strings.Replace(s.Raw, Sync, Ping, 1)})
	}
	return append(seeds, []Seed{
		{"obs-fold", post(Sync, "X-A: 1\r\n  folded\r\nContent-Length: 5\r\n", "hello")},
		{"obs-fold of TE", post(Sync, "Content-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n", "0\r\n\r\n"+hidden)},
		{"bare LF line ends", "POST " + Sync + " HTTP/1.1\nHost: edge.lab.test\nContent-Length: 5\n\nhello"},
		{"bare LF in a header", post(Sync, "X-A: 1\nContent-Length: 48\r\nContent-Length: 5\r\n", "hello")},
		{"bare CR in a header", post(Sync, "X-A: 1\rContent-Length: 48\r\nContent-Length: 5\r\n", "hello")},
		{"bare CR line end", "POST " + Sync + " HTTP/1.1\rHost: edge.lab.test\r\nContent-Length: 5\r\n\r\nhello"},
		{"duplicate Host", post(Sync, "Host: other.lab.test\r\nContent-Length: 5\r\n", "hello")},
		{"no Host", "POST " + Sync + " HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"},
		{"Host with a path", "GET " + Sync + " HTTP/1.1\r\nHost: edge.lab.test/ecp\r\n\r\n"},
		{"duplicate Authorization", post(Sync, "Authorization: Basic YTpi\r\nAuthorization: Negotiate YQ==\r\nContent-Length: 5\r\n", "hello")},
		{"duplicate Content-Type", post(Sync, "Content-Type: a/b\r\nContent-Type: c/d\r\nContent-Length: 5\r\n", "hello")},
		{"NUL in a header value", post(Sync, "X-A: a\x00b\r\nContent-Length: 5\r\n", "hello")},
		{"CTL in a header value", post(Sync, "X-A: a\x01b\r\nContent-Length: 5\r\n", "hello")},
		{"space in a header name", post(Sync, "Content Length: 48\r\nContent-Length: 5\r\n", "hello")},
		{"quote in Host", "GET " + Sync + " HTTP/1.1\r\nHost: edge.lab.test\"x\r\n\r\n"},
		{"DEL in a header name", post(Sync, "X-\x7fA: 1\r\nContent-Length: 5\r\n", "hello")},
		{"NUL in the target", "GET /Microsoft-Server-ActiveSync\x00/../ecp/ HTTP/1.1\r\nHost: edge.lab.test\r\n\r\n"},
		{"space in the target", "GET /Microsoft-Server-ActiveSync /ecp/ HTTP/1.1\r\nHost: edge.lab.test\r\n\r\n"},
		{"non-ASCII in the target", "GET " + Sync + "&x=\xff\xef\xbc\x8f HTTP/1.1\r\nHost: edge.lab.test\r\n\r\n"},
		{"bad escape in the target", "GET /Microsoft-Server-ActiveSync?Cmd=Sync&x=%zz HTTP/1.1\r\nHost: edge.lab.test\r\n\r\n"},
		{"bad escape in the path", "GET /Microsoft-Server-ActiveSync/%zz HTTP/1.1\r\nHost: edge.lab.test\r\n\r\n"},
		{"tab in the target", "GET /Microsoft-Server-ActiveSync\t/ecp/ HTTP/1.1\r\nHost: edge.lab.test\r\n\r\n"},
		{"absolute-form target", "GET https://edge.lab.test" + Sync + " HTTP/1.1\r\nHost: edge.lab.test\r\n\r\n"},
		{"absolute-form target, other host", "GET http://mail.lab.test/ecp/ HTTP/1.1\r\nHost: edge.lab.test\r\n\r\n"},
		{"asterisk target", "OPTIONS * HTTP/1.1\r\nHost: edge.lab.test\r\n\r\n"},
		{"HTTP/1.0 keep-alive", "POST " + Sync + " HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello" + "GET " + Sync + " HTTP/1.0\r\n\r\n"},
		{"HTTP/1.0 chunked", "POST " + Sync + " HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden},
		{"HTTP/0.9 version", "GET " + Sync + " HTTP/0.9\r\nHost: edge.lab.test\r\n\r\n"},
		{"HTTP/1.2", "GET " + Sync + " HTTP/1.2\r\nHost: edge.lab.test\r\n\r\n"},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
		{"lower-case method", "get " + Sync + " HTTP/1.1\r\nHost: edge.lab.test\r\n\r\n"},
		{"leading CRLF", "\r\n" + post(Sync, "Content-Length: 5\r\n", "hello")},
		{"CRLF after a POST body", post(Sync, "Content-Length: 5\r\n", "hello") + "\r\n\r\n" + post(Sync, "Content-Length: 5\r\n", "world")},
		{"Connection: close then more", post(Sync, "Connection: close\r\nContent-Length: 5\r\n", "hello") + hidden},
		{"Upgrade", "GET " + Sync + " HTTP/1.1\r\nHost: edge.lab.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" + hidden},
	}...)
}
