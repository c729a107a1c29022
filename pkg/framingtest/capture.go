package framingtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// Capture is a raw-TCP Exchange: it reads what an engine sends upstream
// more strictly than any server would (CRLF line ends only, no obs-fold, no
// control bytes, one Host, at most one of Content-Length and
// Transfer-Encoding: chunked), answers every request 200 with an empty body,
// and judges each request against what net/http accepted from the device
// the request names in X-Forwarded-For (Run registers it). A request cut
// short by the end of its connection is aborted, not received: a streaming
// proxy that meets a malformed body after sending the header section can
// only close the connection, and Exchange acts on no request it did not
// read whole.
type Capture struct {
	ln net.Listener
	wg sync.WaitGroup

	mu       sync.Mutex
	want     map[string]*expected // by device IP
	findings []error              // not yet returned by Run
	conns    map[net.Conn]bool
	closed   bool
}

type expected struct {
	input   []byte
	reqs    []Request
	next    int
	reached []Request
}

// NewCapture listens on a loopback port; Close stops it.
func NewCapture() (*Capture, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("framingtest: listen: %w", err)
	}
	c := &Capture{ln: ln, want: map[string]*expected{}, conns: map[net.Conn]bool{}}
	c.wg.Add(1)
	go c.accept()
	return c, nil
}

// URL is the capture's base URL, for the engine's Exchange setting.
func (c *Capture) URL() string { return "http://" + c.ln.Addr().String() }

// Close stops the listener and every connection, and waits for them.
func (c *Capture) Close() error {
	err := c.ln.Close()
	c.mu.Lock()
	c.closed = true
	for conn := range c.conns {
		_ = conn.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
	return err
}

func (c *Capture) accept() {
	defer c.wg.Done()
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			_ = conn.Close()
			return
		}
		c.conns[conn] = true
		c.mu.Unlock()
		c.wg.Add(1)
		go c.serve(conn)
	}
}

func (c *Capture) serve(conn net.Conn) {
	defer c.wg.Done()
	defer func() {
		c.mu.Lock()
		delete(c.conns, conn)
		c.mu.Unlock()
		_ = conn.Close()
	}()
	br := bufio.NewReader(conn)
	for {
		req, err := readStrict(br, conn)
		if aborted(err) {
			return
		}
		if err != nil {
			c.note(req, err)
			return
		}
		c.judge(req)
		if _, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"); err != nil {
			return
		}
	}
}

func (c *Capture) note(req Request, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	input := []byte(nil)
	if e := c.want[req.Source]; e != nil {
		input = e.input
	}
	c.findings = append(c.findings, fmt.Errorf("device input %q: Exchange got a malformed request: %w", input, err))
}

// judge matches req with the next request net/http accepted from its device
// that it is the same as (an engine may refuse some: the edge's path rule).
func (c *Capture) judge(req Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.want[req.Source]
	if e == nil {
		c.findings = append(c.findings, fmt.Errorf("a request from unknown device %q reached Exchange: %s", req.Source, req))
		return
	}
	for j := e.next; j < len(e.reqs); j++ {
		if Same(e.reqs[j], req) {
			e.next = j + 1
			e.reached = append(e.reached, req)
			return
		}
	}
	c.findings = append(c.findings, fmt.Errorf("device input %q: Exchange got %s, which net/http did not accept from the device (it accepted, in order: %v)", e.input, req, e.reqs))
}

// readStrict reads one request from an engine's upstream connection; the
// returned Request carries the Source when the header section was read.
func readStrict(br *bufio.Reader, w io.Writer) (Request, error) {
	head, err := readLines(br, 64<<10)
	if err != nil {
		return Request{}, fmt.Errorf("header section: %w", err)
	}
	if err := strictHead(head); err != nil {
		return Request{Source: sourceOf(head)}, err
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		return Request{}, fmt.Errorf("net/http cannot read the header section: %w", err)
	}
	out := Request{Method: req.Method, Target: req.RequestURI, Framing: Length}
	xff := req.Header.Values("X-Forwarded-For")
	if len(xff) > 0 {
		parts := strings.Split(xff[len(xff)-1], ",")
		out.Source = strings.TrimSpace(parts[len(parts)-1])
	}
	if strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
		if _, err := io.WriteString(w, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
			return out, err
		}
	}
	switch {
	case len(req.TransferEncoding) > 0:
		out.Framing = Chunked
		out.Body, err = io.ReadAll(httputil.NewChunkedReader(br))
		if err != nil {
			return out, fmt.Errorf("chunked body: %w", err)
		}
		trailer, err := readLines(br, 64<<10)
		if err != nil {
			return out, fmt.Errorf("trailer section: %w", err)
		}
		if err := strictFields(trailer); err != nil {
			return out, fmt.Errorf("trailer section: %w", err)
		}
	case req.ContentLength > 0:
		out.Body = make([]byte, req.ContentLength)
		if _, err := io.ReadFull(br, out.Body); err != nil {
			return out, fmt.Errorf("body of Content-Length %d: %w", req.ContentLength, err)
		}
	}
	return out, nil
}

// sourceOf finds the last X-Forwarded-For address in a header section
// too malformed for net/http to read, so a finding names its device.
func sourceOf(head []byte) string {
	src := ""
	for _, line := range strings.Split(string(head), "\n") {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "X-Forwarded-For") {
			parts := strings.Split(value, ",")
			src = strings.TrimSpace(parts[len(parts)-1])
		}
	}
	return src
}

// aborted reports whether err is the connection's end (EOF, reset,
// closed) rather than a malformed request.
func aborted(err error) bool {
	var op *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &op)
}

// readLines reads lines up to and including an empty one.
func readLines(br *bufio.Reader, limit int) ([]byte, error) {
	var b []byte
	for {
		line, err := br.ReadSlice('\n')
		b = append(b, line...)
		if errors.Is(err, io.EOF) {
			return b, io.ErrUnexpectedEOF
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return b, err
		}
		if len(b) > limit {
			return b, fmt.Errorf("more than %d bytes", limit)
		}
		if err == nil && (len(line) == 2 && line[0] == '\r' || len(line) == 1) {
			return b, nil
		}
	}
}

// strictHead checks a request's header section as sent by a proxy: the
// request line "METHOD SP target SP HTTP/1.1" and strict header fields.
func strictHead(head []byte) error {
	i := bytes.IndexByte(head, '\n')
	line := head[:i+1]
	if err := strictLine(line); err != nil {
		return fmt.Errorf("request line %q: %w", line, err)
	}
	parts := strings.Split(string(line[:len(line)-2]), " ")
	if len(parts) != 3 || parts[2] != "HTTP/1.1" || !validToken(parts[0]) || parts[1] == "" {
		return fmt.Errorf("request line %q is not METHOD SP target SP HTTP/1.1", line)
	}
	for _, b := range []byte(parts[1]) {
		// Bytes above 0x7f are net/http's to accept or refuse: it accepts
		// them, and they are the device's target, forwarded as sent.
		if b <= ' ' || b == 0x7f {
			return fmt.Errorf("request target %q holds byte %#x", parts[1], b)
		}
	}
	if err := strictFields(head[i+1:]); err != nil {
		return err
	}
	counts := map[string]int{}
	var te string
	for _, f := range bytes.Split(head[i+1:len(head)-2], []byte("\r\n")) {
		if len(f) == 0 {
			continue
		}
		name, value, _ := strings.Cut(string(f), ":")
		name = strings.ToLower(name)
		counts[name]++
		value = strings.Trim(value, " \t")
		switch name {
		case "transfer-encoding":
			te = value
		case "content-length":
			if _, err := strconv.ParseUint(value, 10, 63); err != nil || value == "" || strings.TrimLeft(value, "0123456789") != "" {
				return fmt.Errorf("Content-Length %q", value)
			}
		}
	}
	switch {
	case counts["host"] != 1:
		return fmt.Errorf("%d Host fields", counts["host"])
	case counts["content-length"] > 1 || counts["transfer-encoding"] > 1:
		return fmt.Errorf("%d Content-Length and %d Transfer-Encoding fields", counts["content-length"], counts["transfer-encoding"])
	case counts["content-length"] == 1 && counts["transfer-encoding"] == 1:
		return errors.New("both Content-Length and Transfer-Encoding")
	case counts["transfer-encoding"] == 1 && !strings.EqualFold(te, "chunked"):
		return fmt.Errorf("Transfer-Encoding %q", te)
	}
	return nil
}

// strictFields checks field lines ending in an empty line: each
// "name:value" CRLF with a token name and a valid value, no obs-fold.
func strictFields(b []byte) error {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b[:i+1]
		b = b[i+1:]
		if err := strictLine(line); err != nil {
			return fmt.Errorf("field line %q: %w", line, err)
		}
		if len(line) == 2 {
			if len(b) != 0 {
				return errors.New("bytes after the empty line")
			}
			return nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return fmt.Errorf("obs-fold line %q", line)
		}
		name, value, ok := bytes.Cut(line[:len(line)-2], []byte(":"))
		if !ok || !httpguts.ValidHeaderFieldName(string(name)) || !httpguts.ValidHeaderFieldValue(string(value)) {
			return fmt.Errorf("field line %q is not token:value", line)
		}
	}
	return errors.New("no empty line")
}

// strictLine: the line ends in CRLF and holds no other CR, LF or control
// byte but HTAB.
func strictLine(line []byte) error {
	if len(line) < 2 || line[len(line)-2] != '\r' || line[len(line)-1] != '\n' {
		return errors.New("does not end in CRLF")
	}
	for _, b := range line[:len(line)-2] {
		if (b < ' ' && b != '\t') || b == 0x7f {
			return fmt.Errorf("holds control byte %#x", b)
		}
	}
	return nil
}

func validToken(s string) bool {
	return s != "" && httpguts.ValidHeaderFieldName(s)
}
