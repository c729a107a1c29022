package edge

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestTicketKeysNeverShareACall(t *testing.T) {
	tests := []struct{ a, b ticketKey }{
		{ticketKey{"a\x00b", "c"}, ticketKey{"a", "b\x00c"}},
		{ticketKey{"alice@x", "HTTP/mail"}, ticketKey{"alice@xHTTP/", "mail"}},
		{ticketKey{"", "1:x"}, ticketKey{"1:x", ""}},
	}
	for _, tc := range tests {
		if tc.a.String() == tc.b.String() {
			t.Errorf("%q and %q share the call key %q", tc.a, tc.b, tc.a.String())
		}
	}
}

func TestSharedCallOutlivesAnImpatientCaller(t *testing.T) {
	c := &sharedCalls[string]{timeout: time.Minute}
	release := make(chan struct{})
	// Room for two calls: the patient caller's goroutine may first run
	// after the call it was to join has ended, and then starts its own
	// (CI rehearsal 4 of session 8: the second call blocked on a full
	// channel for ever). The first value is the first call's.
	callErr := make(chan error, 2)
	fn := func(ctx context.Context) (string, error) {
		<-release
		callErr <- ctx.Err()
		return "ticket", nil
	}
	impatient, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := c.do(impatient, "k", fn)
		first <- err
	}()
	patient := make(chan string, 1)
	go func() {
		// Joins the call the first caller started (or starts it: fn is the same).
		v, _ := c.do(context.Background(), "k", fn)
		patient <- v
	}()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("impatient caller: %v, want context.Canceled", err)
	}
	close(release)
	if v := <-patient; v != "ticket" {
		t.Fatalf("patient caller got %q", v)
	}
	if err := <-callErr; err != nil {
		t.Fatalf("the call saw %v: cancelled with its first caller", err)
	}
}

func TestSharedCallBoundedByTimeout(t *testing.T) {
	c := &sharedCalls[int]{timeout: time.Millisecond}
	_, err := c.do(context.Background(), "k", func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v, want the call's own deadline", err)
	}
}
