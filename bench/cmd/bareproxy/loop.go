package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The device side without net/http's server (-device-loop): issue 25's
// "stage B" as a measurement, not a product. One goroutine per connection
// reads requests with net/http's http.ReadRequest on the connection's own
// reused bufio.Reader and writes each answer through loopWriter, a minimal
// http.ResponseWriter over the connection's own reused bufio.Writer,
// flushed once per answer (and on Flush). The handler is the same
// httputil.ReverseProxy as the default mode, so bare against bareloop in one
// run of bench/run.sh side is what net/http's server costs on the device
// side of a Go proxy.
//
// What it leaves out, on purpose, and what a product version would have to
// add (docs/benchmarks.md, issue 25, stage B): no Expect: 100-continue, no
// HTTP/1.0 keep-alive, no background read (a device that hangs up is not
// noticed until the answer is written, so the request's context is never
// cancelled), no request-size limits beyond ReadRequest's, no Shutdown, no
// trailers, no HTTP/2. It keeps the read deadlines net/http's server sets
// per request (idle wait, header read, cleared for the body), so the
// difference measured is not that of dropping timeouts.

// loopConfig holds the device loop's timeouts.
type loopConfig struct {
	idle   time.Duration // the wait for the next request on a kept connection
	header time.Duration // reading a request's header
}

// serveLoop accepts connections from lis and serves each with serveConn;
// it returns the accept error that ends it (the listener closed, too).
func serveLoop(lis net.Listener, h http.Handler, cfg loopConfig) error {
	for {
		c, err := lis.Accept()
		if err != nil {
			return err
		}
		go serveConn(c, h, cfg)
	}
}

// loopBuffers are the connections' reader and writer, reused across
// connections as net/http's server does.
var (
	loopReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	loopWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

// serveConn serves the requests of one connection in turn until the device
// closes it, asks to close it, or a request cannot be read or answered.
func serveConn(c net.Conn, h http.Handler, cfg loopConfig) {
	defer c.Close()
	defer func() {
		// The reverse proxy aborts an answer broken off after its header
		// with http.ErrAbortHandler, as net/http's server expects: the
		// connection closes.
		if v := recover(); v != nil && v != http.ErrAbortHandler { //nolint:errorlint // the sentinel itself is panicked
			panic(v)
		}
	}()
	var state *tls.ConnectionState
	if tc, ok := c.(*tls.Conn); ok {
		_ = tc.SetDeadline(time.Now().Add(cfg.header))
		if err := tc.Handshake(); err != nil {
			return
		}
		_ = tc.SetDeadline(time.Time{})
		cs := tc.ConnectionState()
		state = &cs
	}
	br := loopReaders.Get().(*bufio.Reader)
	bw := loopWriters.Get().(*bufio.Writer)
	br.Reset(c)
	bw.Reset(c)
	defer func() {
		br.Reset(nil)
		bw.Reset(nil)
		loopReaders.Put(br)
		loopWriters.Put(bw)
	}()
	remote := c.RemoteAddr().String()
	w := &loopWriter{bw: bw}
	for {
		_ = c.SetReadDeadline(time.Now().Add(cfg.idle))
		if _, err := br.Peek(1); err != nil {
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(cfg.header))
		req, err := http.ReadRequest(br)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
			}
			return
		}
		_ = c.SetReadDeadline(time.Time{})
		if req.ProtoMajor != 1 || req.ProtoMinor != 1 {
			_, _ = io.WriteString(c, "HTTP/1.1 505 HTTP Version Not Supported\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
			return
		}
		req.RemoteAddr, req.TLS = remote, state
		w.reset(req)
		h.ServeHTTP(w, req)
		if !w.finish() || req.Close {
			return
		}
		// A body the handler left unread is read off, as net/http's server
		// does, up to 256 KiB; beyond that the connection closes.
		if n, err := io.Copy(io.Discard, io.LimitReader(req.Body, 256<<10+1)); err != nil || n > 256<<10 {
			return
		}
	}
}

// loopWriter is one answer's http.ResponseWriter: the status line and the
// header go into the connection's buffer at the first Write (or
// WriteHeader), the body with Content-Length framing when the handler set
// it, chunked otherwise.
type loopWriter struct {
	bw      *bufio.Writer
	h       http.Header
	req     *http.Request
	status  int  // the final status written; 0 before
	chunked bool // the body is chunk-encoded
	noBody  bool // HEAD, 204, 304: no body bytes go out
	err     error
}

// reset prepares w for req's answer; the header map is cleared and kept.
func (w *loopWriter) reset(req *http.Request) {
	if w.h == nil {
		w.h = make(http.Header, 8)
	} else {
		clear(w.h)
	}
	w.req, w.status, w.chunked, w.noBody, w.err = req, 0, false, false, nil
}

// Header returns the answer's header map.
func (w *loopWriter) Header() http.Header { return w.h }

// WriteHeader writes the status line and the header: at once for an
// informational status (the header map is kept for the final one), once
// for the final one.
func (w *loopWriter) WriteHeader(code int) {
	if w.status != 0 || w.err != nil {
		return
	}
	w.writeStatus(code)
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		if err := w.h.Write(w.bw); err != nil && w.err == nil {
			w.err = err
		}
		w.end()
		return
	}
	w.status = code
	w.noBody = w.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	if _, ok := w.h["Content-Length"]; !ok && !w.noBody {
		w.chunked = true
		w.h["Transfer-Encoding"] = []string{"chunked"}
	}
	if err := w.h.Write(w.bw); err != nil && w.err == nil {
		w.err = err
	}
	w.end()
}

func (w *loopWriter) writeStatus(code int) {
	var b [64]byte
	s := append(b[:0], "HTTP/1.1 "...)
	s = strconv.AppendInt(s, int64(code), 10)
	s = append(s, ' ')
	s = append(s, http.StatusText(code)...)
	s = append(s, "\r\n"...)
	_, w.err = w.bw.Write(s)
}

func (w *loopWriter) end() {
	if w.err == nil {
		_, w.err = w.bw.WriteString("\r\n")
	}
}

// Write writes body bytes, framed as the header says.
func (w *loopWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody || len(p) == 0 {
		return len(p), nil
	}
	if w.chunked {
		var b [18]byte
		if _, w.err = w.bw.Write(append(strconv.AppendInt(b[:0], int64(len(p)), 16), '\r', '\n')); w.err != nil {
			return 0, w.err
		}
	}
	n, err := w.bw.Write(p)
	if err == nil && w.chunked {
		_, err = w.bw.WriteString("\r\n")
	}
	w.err = err
	return n, err
}

// Flush sends what is buffered (http.Flusher: the reverse proxy flushes a
// streamed answer after every write).
func (w *loopWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err == nil {
		w.err = w.bw.Flush()
	}
}

// finish ends the answer (the last chunk) and flushes it; false when the
// connection cannot carry another request.
func (w *loopWriter) finish() bool {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err == nil && w.chunked {
		_, w.err = w.bw.WriteString("0\r\n\r\n")
	}
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	return w.err == nil
}
