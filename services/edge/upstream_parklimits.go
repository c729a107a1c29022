package edge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
)

// defaultMaxResponseHeaderBytes bounds the header bytes of Exchange's
// answer (informational answers before it included), on the proxy path
// (http.Transport.MaxResponseHeaderBytes) and the parked-Ping path alike.
// Exchange's headers are a few KiB; net/http's own default is 10 MiB.
const defaultMaxResponseHeaderBytes = 1 << 20

// errResponseHeadersTooLarge means Exchange's response headers passed
// MaxResponseHeaderBytes.
var errResponseHeadersTooLarge = errors.New("edge: Exchange's response headers exceed the limit")

// headerLimit reads from the upstream connection with a byte budget for
// response headers, lifted once the final answer's header is read (the
// body is not limited), as http.Transport's persistConn.readLimit does.
type headerLimit struct {
	lr  io.LimitedReader
	max int64
}

func newHeaderLimit(r io.Reader, max int64) *headerLimit {
	return &headerLimit{lr: io.LimitedReader{R: r, N: max}, max: max}
}

// Read reads within the budget.
func (h *headerLimit) Read(p []byte) (int, error) { return h.lr.Read(p) }

// reset gives the next answer's header a budget of its own, as
// http.Transport does for each informational answer the reverse proxy
// relays.
func (h *headerLimit) reset() { h.lr.N = h.max }

// lift removes the budget for the body.
func (h *headerLimit) lift() { h.lr.N = math.MaxInt64 }

// explain wraps a header read error, naming the limit when the budget ran out.
func (h *headerLimit) explain(err error) error {
	if h.lr.N <= 0 {
		return fmt.Errorf("edge: the Ping's answer: %w (%d bytes)", errResponseHeadersTooLarge, h.max)
	}
	return fmt.Errorf("edge: read the Ping's answer: %w", err)
}

// informational reports whether status is a 1xx answer that a final one
// follows (101 Switching Protocols is final).
func informational(status int) bool {
	return status >= 100 && status < 200 && status != http.StatusSwitchingProtocols
}

// relayInformational writes an informational answer to the device, after
// the inbound header rule (informationalHeader), as the proxy path does.
func (ping *parkedPing) relayInformational(resp *http.Response) error {
	informationalHeader(resp.Header)
	bw := bufio.NewWriterSize(ping.dev, 512)
	fmt.Fprintf(bw, "HTTP/1.1 %03d %s\r\n", resp.StatusCode, http.StatusText(resp.StatusCode))
	_ = resp.Header.Write(bw)
	_, _ = bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("edge: relay an informational answer to the device: %w", context.Canceled)
	}
	return nil
}
