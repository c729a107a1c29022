package flight

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// caught runs f and returns the value it panicked with, nil if none.
func caught(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

func TestGuard(t *testing.T) {
	errPlain := errors.New("directory down")
	for _, tc := range []struct {
		name      string
		fn        func() (int, error)
		wantV     int
		wantErr   error
		wantPanic string
	}{
		{"a value", func() (int, error) { return 7, nil }, 7, nil, ""},
		{"an error", func() (int, error) { return 0, errPlain }, 0, errPlain, ""},
		{"a panic", func() (int, error) { panic("index out of range [5]") }, 0, nil, "index out of range [5]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Guard("test: the lookup", tc.fn)
			if tc.wantPanic == "" {
				if v != tc.wantV || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
					t.Fatalf("Guard = %d, %v; want %d, %v", v, err, tc.wantV, tc.wantErr)
				}
				return
			}
			var p *Panic
			if v != 0 || !errors.As(err, &p) {
				t.Fatalf("Guard = %d, %v; want 0 and a *Panic", v, err)
			}
			if p.Call != "test: the lookup" || fmt.Sprint(p.Value) != tc.wantPanic || !strings.Contains(string(p.Stack), "flight_test.go") {
				t.Fatalf("panic %q %v, stack:\n%s", p.Call, p.Value, p.Stack)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "test: the lookup panicked: "+tc.wantPanic+"\n") || !strings.Contains(msg, "goroutine ") {
				t.Fatalf("message %q, want the call, the value and the stack", msg)
			}
		})
	}
}

func TestRaise(t *testing.T) {
	p := &Panic{Call: "test", Value: "boom"}
	for _, tc := range []struct {
		name string
		err  error
		want any
	}{
		{"nil", nil, nil},
		{"a plain error", errors.New("no"), nil},
		{"a panic", p, p},
		{"a wrapped panic", fmt.Errorf("lookup: %w", p), p},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := caught(func() { Raise(tc.err) }); got != tc.want {
				t.Fatalf("Raise(%v) panicked with %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestGroupCarriesThePanicToEachCaller: singleflight's DoChan raises a
// panic of the call in a goroutine of its own, which ends the process;
// through Group it reaches each waiting caller's goroutine, OnPanic sees
// it once, and the key's next call runs again.
func TestGroupCarriesThePanicToEachCaller(t *testing.T) {
	var calls atomic.Int32
	var seen []string
	var mu sync.Mutex
	g := &Group[int]{Call: "test: the fetch", OnPanic: func(key string, p *Panic) {
		mu.Lock()
		seen = append(seen, key+": "+fmt.Sprint(p.Value))
		mu.Unlock()
	}}
	release := make(chan struct{})
	fn := func() (int, error) {
		calls.Add(1)
		<-release
		panic("unexpected answer")
	}
	const callers = 5
	chans := make([]<-chan struct{ v any }, callers)
	var started sync.WaitGroup
	for i := range callers {
		out := make(chan struct{ v any }, 1)
		chans[i] = out
		started.Add(1)
		go func() {
			ch := g.DoChan("alice", fn)
			started.Done()
			out <- struct{ v any }{caught(func() { _, _ = g.Wait(context.Background(), ch) })}
		}()
	}
	started.Wait()
	close(release)
	for i, out := range chans {
		got := (<-out).v
		p, ok := got.(*Panic)
		if !ok || fmt.Sprint(p.Value) != "unexpected answer" {
			t.Fatalf("caller %d got %v, want the call's panic raised in its goroutine", i, got)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d calls for %d concurrent callers, want 1", n, callers)
	}
	mu.Lock()
	if len(seen) != 1 || seen[0] != "alice: unexpected answer" {
		t.Fatalf("OnPanic saw %q, want the one panic with its key", seen)
	}
	mu.Unlock()

	// Nothing of the panic is kept: the next call runs.
	v, err := g.Wait(context.Background(), g.DoChan("alice", func() (int, error) { return 42, nil }))
	if v != 42 || err != nil {
		t.Fatalf("after the panic: %d, %v; want 42", v, err)
	}
}

// TestGroupPanicWithNobodyWaiting: a call whose caller left (or a
// background one nobody waits for) that panics neither ends the process
// nor passes unseen.
func TestGroupPanicWithNobodyWaiting(t *testing.T) {
	seen := make(chan string, 1)
	g := &Group[string]{Call: "test: the refresh", OnPanic: func(key string, p *Panic) { seen <- key }}
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	v, err := g.Wait(ctx, g.DoChan("bob", func() (string, error) {
		<-release
		panic("late parser panic")
	}))
	if v != "" || !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with an ended context = %q, %v; want its error", v, err)
	}
	close(release)
	select {
	case key := <-seen:
		if key != "bob" {
			t.Fatalf("OnPanic got key %q", key)
		}
	case <-time.After(time.Minute): // a bound for a hung test, not a timing assertion
		t.Fatal("OnPanic never saw the panic of the abandoned call")
	}
}
