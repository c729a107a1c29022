package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

// TestClassify: each error a phone can meet gets the kind the report and
// the error log name it by. A write into a connection the edge already
// closed (EPIPE, as when the edge refuses a TLS 1.3 client certificate
// while the request is being written) is "reset", like a reset on read:
// it was counted as "other" (the flaky certificate case of
// TestErrorLogNamesStageAndEdge under load).
func TestClassify(t *testing.T) {
	op := func(op string, err error) error {
		return &net.OpError{Op: op, Net: "tcp", Err: &os.SyscallError{Syscall: op, Err: err}}
	}
	for _, tt := range []struct {
		err  error
		want string
	}{
		{op("dial", syscall.ECONNREFUSED), "refused"},
		{op("read", syscall.ECONNRESET), "reset"},
		{op("write", syscall.EPIPE), "reset"},
		{fmt.Errorf("Post %q: %w", "https://edge", op("write", syscall.EPIPE)), "reset"},
		{op("dial", syscall.EMFILE), "too_many_files"},
		{op("dial", syscall.EADDRNOTAVAIL), "addr_not_avail"},
		{context.DeadlineExceeded, "timeout"},
		{io.ErrUnexpectedEOF, "eof"},
		{errors.New("remote error: tls: certificate required"), "tls"},
		{errors.New("something else"), "other"},
	} {
		if got := classify(tt.err); got != tt.want {
			t.Errorf("classify(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
