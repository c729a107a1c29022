// Package framingtest is the differential test of HTTP/1.1 request framing
// that an engine of the edge must pass (issue 25): raw request bytes from a
// device go to the engine under test, a raw-TCP Exchange (Capture) records
// what reaches it, and net/http's own parser is the oracle (Accepted). No
// request net/http would refuse may reach Exchange, and what reaches it has
// the method, target, framing and body net/http read.
//
// The test is black-box and engine-agnostic: an engine is a way to dial a
// device connection (Run's dial); the edge's tests run it against the edge
// with its mTLS door for each HTTP/1.1 engine, the fasthttp candidate's
// against bench/cmd/fastproxy. net/http is the yardstick because it is the
// edge's parser today and what HTTP/2 devices keep; its rules are read from
// its code (http.ReadRequest plus the server's own checks in
// net/http.(*conn).readRequest), not written anew: a parser of our own here
// would be a second guess, not an oracle.
package framingtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"

	"golang.org/x/net/http/httpguts"
)

// Framing is how a request's body is delimited on the wire.
type Framing string

// The framings: a request without a body counts as Length (0 bytes).
const (
	Length  Framing = "length"
	Chunked Framing = "chunked"
)

// Request is one request as net/http's server reads it from a device, or
// as a Capture read it from the engine's upstream connection.
type Request struct {
	Method string
	// Target is the origin-form target: path and query (the absolute form's
	// scheme and authority are the proxy's to replace).
	Target  string
	Framing Framing
	Body    []byte
	// Source is the device address the engine named in X-Forwarded-For
	// (Capture only).
	Source string
}

func (r Request) String() string {
	return fmt.Sprintf("%s %q %s %dB %.40q", r.Method, r.Target, r.Framing, len(r.Body), r.Body)
}

// End is why net/http stopped reading a device's bytes.
type End int

const (
	// Open: the bytes ended at a request boundary or inside a request; the
	// server waits for more, so the device must close its side.
	Open End = iota
	// Closed: the last request asked for the connection to close (Connection:
	// close, HTTP/1.0 without keep-alive); the server stops there.
	Closed
	// Refused: net/http refused a request (400, 417, 431, 501, 505); the
	// server closes the connection.
	Refused
)

func (e End) String() string {
	return [...]string{"open", "closed", "refused"}[e]
}

// Accepted returns the requests net/http's HTTP/1.1 server would hand its
// handler from a device that sent raw, in order, each with its whole body
// read, and why it stopped: at the first request it refuses (refusal then
// says why), at a request that closes the connection, or at the end of raw.
// A request whose body is cut short or malformed is not among them.
func Accepted(raw []byte) (reqs []Request, end End, refusal error) {
	src := bytes.NewReader(raw)
	br := bufio.NewReaderSize(src, 4096)
	consumed := func() int { return len(raw) - src.Len() - br.Buffered() }
	lastMethod := ""
	for {
		if lastMethod == "POST" {
			// net/http: "RFC 7230 section 3 tolerance for old buggy clients".
			peek, _ := br.Peek(4)
			n := 0
			for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
				n++
			}
			_, _ = br.Discard(n)
		}
		if _, err := br.Peek(1); err != nil {
			return reqs, Open, nil
		}
		start := consumed()
		req, err := http.ReadRequest(br)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return reqs, Open, nil
		}
		if err != nil {
			return reqs, Refused, fmt.Errorf("read request: %w", err)
		}
		if err := serverRules(req, raw[start:consumed()]); err != nil {
			return reqs, Refused, err
		}
		body, err := io.ReadAll(req.Body)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return reqs, Open, nil
		}
		if err != nil {
			return reqs, Refused, fmt.Errorf("read body: %w", err)
		}
		f := Length
		if len(req.TransferEncoding) > 0 {
			f = Chunked
		}
		reqs = append(reqs, Request{Method: req.Method, Target: req.URL.RequestURI(), Framing: f, Body: body})
		if req.Close {
			return reqs, Closed, nil
		}
		lastMethod = req.Method
	}
}

// serverRules are the checks net/http's server adds to http.ReadRequest
// (net/http.(*conn).readRequest and (*conn).serve, Go 1.26): the protocol
// version, the Host header, header names and values, and Expect. head is
// the request's raw header section, from which the Host lines are read
// again (ReadRequest removes them from Header).
func serverRules(req *http.Request, head []byte) error {
	if req.ProtoMajor != 1 && (req.ProtoMajor != 2 || req.ProtoMinor != 0 || req.Method != "PRI" || req.RequestURI != "*") {
		return fmt.Errorf("505: unsupported protocol version %q", req.Proto)
	}
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(head)))
	if _, err := tp.ReadLine(); err != nil {
		return fmt.Errorf("read request line again: %w", err)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		return fmt.Errorf("read header again: %w", err)
	}
	hosts, haveHost := hdr["Host"]
	if req.ProtoAtLeast(1, 1) && (!haveHost || len(hosts) == 0) && req.Method != "CONNECT" && req.Method != "PRI" {
		return errors.New("400: missing required Host header")
	}
	if len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]) {
		return errors.New("400: malformed Host header")
	}
	for k, vv := range hdr {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("400: invalid header name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("400: invalid value of header %q", k)
			}
		}
	}
	if e := req.Header.Get("Expect"); e != "" && !httpguts.HeaderValuesContainsToken([]string{e}, "100-continue") {
		return fmt.Errorf("417: Expect %q", e)
	}
	return nil
}

// Same reports whether got, a request that reached Exchange, is want, one
// net/http read from the device: the same method, body and target, and the
// same framing unless the body is empty (a proxy sends an empty chunked
// body as Content-Length: 0, or none). The query may also have been
// re-encoded as net/http/httputil.ReverseProxy does when it holds a
// semicolon or a bad escape (it drops the unparsable parameters).
func Same(want, got Request) bool {
	if want.Method != got.Method || !bytes.Equal(want.Body, got.Body) {
		return false
	}
	if want.Framing != got.Framing && len(want.Body) > 0 {
		return false
	}
	if want.Target == got.Target {
		return true
	}
	wp, wq, _ := cutQuery(want.Target)
	gp, gq, _ := cutQuery(got.Target)
	if wp != gp {
		return false
	}
	v, _ := url.ParseQuery(wq)
	return v.Encode() == gq
}

func cutQuery(target string) (path, query string, ok bool) {
	for i := range len(target) {
		if target[i] == '?' {
			return target[:i], target[i+1:], true
		}
	}
	return target, "", false
}
