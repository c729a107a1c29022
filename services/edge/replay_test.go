package edge

import (
	"bufio"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMakeReplayable checks a small body reaches the first attempt whole
// and every reopen gives it again from the start, and a large or chunked
// body is left to stream without a way to send it again.
func TestMakeReplayable(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		length     int64 // -1: chunked
		replayable bool
	}{
		{name: "small", body: "<Sync/>", length: 7, replayable: true},
		{name: "at the limit", body: strings.Repeat("x", 64), length: 64, replayable: true},
		{name: "over the limit", body: strings.Repeat("x", 65), length: 65},
		{name: "chunked", body: "abc", length: -1},
	}
	s := &Service{cfg: &Config{ReplayMaxBytes: 64}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/x", strings.NewReader(tt.body))
			r.ContentLength = tt.length
			if err := s.makeReplayable(r); err != nil {
				t.Fatal(err)
			}
			if got := r.GetBody != nil; got != tt.replayable {
				t.Fatalf("replayable %v, want %v", got, tt.replayable)
			}
			first, err := io.ReadAll(r.Body)
			if err != nil || string(first) != tt.body {
				t.Fatalf("first attempt read %q, %v", first, err)
			}
			if !tt.replayable {
				return
			}
			for i := range 2 {
				b, err := r.GetBody()
				if err != nil {
					t.Fatal(err)
				}
				again, _ := io.ReadAll(b)
				if string(again) != tt.body {
					t.Fatalf("reopen %d read %q, want %q", i, again, tt.body)
				}
			}
		})
	}
}

// countingWriter counts the writes that reach it: behind a bufio.Writer,
// the system calls a request costs on an upstream connection.
type countingWriter struct{ writes int }

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return len(p), nil }

// TestReplayableBodyGoesOutInOneWrite checks a small body kept for a 401
// retry is one net/http writes with its header in one write, on the first
// attempt and on a retry: net/http flushes the header on its own first for
// a body it does not know to be in memory, one more system call (and TCP
// segment) per EAS POST on both engines.
func TestReplayableBodyGoesOutInOneWrite(t *testing.T) {
	s := &Service{cfg: &Config{ReplayMaxBytes: 64}}
	r := httptest.NewRequest("POST", "http://exchange.test/Microsoft-Server-ActiveSync?Cmd=Sync", strings.NewReader(easBody[:60]))
	if err := s.makeReplayable(r); err != nil {
		t.Fatal(err)
	}
	for attempt := range 2 {
		out := r.Clone(r.Context())
		out.RequestURI = ""
		if attempt == 1 {
			b, err := r.GetBody()
			if err != nil {
				t.Fatal(err)
			}
			out.Body = b
		}
		var w countingWriter
		bw := bufio.NewWriterSize(&w, 4096)
		if err := out.Write(bw); err != nil {
			t.Fatal(err)
		}
		if err := bw.Flush(); err != nil { // as the relay's write and the transport do
			t.Fatal(err)
		}
		if w.writes != 1 {
			t.Fatalf("attempt %d: the request went out in %d writes, want 1", attempt, w.writes)
		}
	}
}
