package edge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
)

// WBXML Sync requests (MS-ASWBXML code page 0), written out byte by byte:
// header 03 01 6A 00; Sync (0x05|0x40); then the children.
var (
	// <Sync><Wait>5</Wait></Sync>
	wbxmlSyncWait = []byte{0x03, 0x01, 0x6a, 0x00, 0x45, 0x64, 0x03, '5', 0x00, 0x01, 0x01}
	// <Sync><Collections><Collection><SyncKey>7</SyncKey></Collection></Collections><HeartbeatInterval>600</HeartbeatInterval></Sync>
	wbxmlSyncHeartbeat = []byte{0x03, 0x01, 0x6a, 0x00, 0x45, 0x5c, 0x4f, 0x4b, 0x03, '7', 0x00, 0x01, 0x01, 0x01,
		0x69, 0x03, '6', '0', '0', 0x00, 0x01, 0x01}
	// <Sync><Collections><Collection><Commands><Add/></Commands></Collection></Collections><Wait>5</Wait></Sync>
	wbxmlSyncWaitWithChanges = []byte{0x03, 0x01, 0x6a, 0x00, 0x45, 0x5c, 0x4f, 0x56, 0x07, 0x01, 0x01, 0x01,
		0x64, 0x03, '5', 0x00, 0x01, 0x01}
	// <Sync><Collections><Collection><SyncKey>7</SyncKey></Collection></Collections></Sync>: no wait
	wbxmlSyncPlain = []byte{0x03, 0x01, 0x6a, 0x00, 0x45, 0x5c, 0x4f, 0x4b, 0x03, '7', 0x00, 0x01, 0x01, 0x01, 0x01}
)

// TestSyncWaits: which Sync bodies are pure waits the drain may answer
// with an empty Sync response.
func TestSyncWaits(t *testing.T) {
	pingPage := []byte{0x03, 0x01, 0x6a, 0x00, 0x00, 0x0d, 0x45, 0x48, 0x03, '9', 0x00, 0x01, 0x01} // Ping with HeartbeatInterval
	for _, tt := range []struct {
		name string
		body []byte
		want bool
	}{
		{"Wait", wbxmlSyncWait, true},
		{"HeartbeatInterval", wbxmlSyncHeartbeat, true},
		{"Wait with client changes", wbxmlSyncWaitWithChanges, false},
		{"no wait", wbxmlSyncPlain, false},
		{"Ping page", pingPage, false},
		{"truncated", wbxmlSyncWait[:8], false},
		{"XML", []byte("<Sync><Wait>5</Wait></Sync>"), false},
		{"Wait below Collections (not Sync's child)", []byte{0x03, 0x01, 0x6a, 0x00, 0x45, 0x5c, 0x64, 0x03, '5', 0x00, 0x01, 0x01, 0x01}, false},
		{"empty", nil, false},
	} {
		if got := syncWaits(tt.body); got != tt.want {
			t.Errorf("%s: syncWaits = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestEmptySyncIsNotAWait: an empty Sync request repeats the cached one,
// which may or may not wait; the drain leaves it to finish at Exchange
// (answering it empty could leave the device behind a SyncKey Exchange
// moved on). CI's lab stage caught the other rule: TestLabSIGTERMUnderLoad's
// in-flight empty Syncs got an empty 200 instead of Exchange's answer.
func TestEmptySyncIsNotAWait(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=D&DeviceType=iPhone", nil)
	state := &requestState{}
	state.eas.Cmd = "Sync"
	if got := waitOf(r, state); got != syncNoWait {
		t.Fatalf("waitOf(an empty Sync) = %v, want syncNoWait", got)
	}
}

// drainedSyncOK reports what is wrong with resp as the answer a stopping
// edge gives a waiting Sync (an empty Sync response); "" when right.
func drainedSyncOK(resp *http.Response, body string) string {
	switch {
	case resp.StatusCode != http.StatusOK:
		return "status " + resp.Status
	case body != "":
		return "a body: not an empty Sync response"
	case resp.ProtoMajor == 1 && !resp.Close && resp.Header.Get("Connection") != "close":
		return "no Connection: close"
	}
	return ""
}

// TestStopAnswersWaitingSyncs: an EAS Sync with a Wait or a
// HeartbeatInterval held at Exchange when the edge stops is answered at the end of
// the grace with an empty Sync response and Connection: close, on each
// engine, and Stop returns without waiting for the drain deadline; a Sync
// with client changes is not answered so. On main before this change the
// held Sync was cut at the drain deadline (Stop: context deadline exceeded).
func TestStopAnswersWaitingSyncs(t *testing.T) {
	const syncURL = "/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=DEV1&DeviceType=iPhone"
	for _, body := range []struct {
		name string
		b    string
	}{{"Wait", string(wbxmlSyncWait)}, {"HeartbeatInterval", string(wbxmlSyncHeartbeat)}} {
		for _, tc := range []struct {
			name   string
			engine string
			h2     bool
		}{{"net/http", "net/http", false}, {"relay", "relay", false}, {"HTTP/2", "", true}} {
			t.Run(body.name+"/"+tc.name, func(t *testing.T) {
				if tc.engine == "relay" && !pollSupported {
					t.Skip("the relay needs pollReady (Linux)")
				}
				h := newHarness(t, func(c *config.Config) { c.Segmesh.Edge.HTTP1Engine = tc.engine }, options{})
				var entered, cancelled atomic.Int64
				end := make(chan struct{}) // runs before the harness's cleanups
				t.Cleanup(func() { close(end) })
				h.exchange.handler = func(w http.ResponseWriter, r *http.Request, _ string) {
					_, _ = io.ReadAll(r.Body) // so that net/http notices the edge cancelling
					entered.Add(1)
					select {
					case <-r.Context().Done():
						cancelled.Add(1)
					case <-end:
					}
				}
				cert := h.ca.issue(t, certOpts{cn: "alice"})
				got := h.sendHeld(t, &cert, tc.h2, syncURL, body.b)
				waitFor(t, "the Sync held at Exchange", func() bool { return entered.Load() == 1 })
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				stopped := make(chan error, 1)
				go func() { stopped <- h.edge.Stop(ctx) }()
				var a pingAnswer
				select {
				case a = <-got:
				case <-time.After(20 * time.Second): // a bound for the failure, not a timing
					t.Fatal("the waiting Sync got no answer in 20 s")
				}
				if a.err != nil {
					t.Fatalf("the waiting Sync got no answer: %v", a.err)
				}
				if what := drainedSyncOK(a.resp, a.body); what != "" {
					t.Fatalf("answer to the waiting Sync: %s (%q)", what, a.body)
				}
				if err := <-stopped; err != nil {
					t.Fatalf("Stop: %v", err)
				}
				waitFor(t, "Exchange saw the Sync cancelled", func() bool { return cancelled.Load() == 1 })
			})
		}
	}
}

// TestWaitingSyncAnsweredAtOnceAfterGrace: once the grace is over a
// waiting Sync still reaching the handler is answered with an empty Sync
// response without going to Exchange; a Sync with client changes is not.
func TestWaitingSyncAnsweredAtOnceAfterGrace(t *testing.T) {
	h := newHarness(t, nil, options{})
	if err := h.edge.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		body []byte
		want bool
	}{{"Wait", wbxmlSyncWait, true}, {"client changes", wbxmlSyncWaitWithChanges, false}, {"no wait", wbxmlSyncPlain, false}} {
		r := httptest.NewRequest(http.MethodPost, syncPath, strings.NewReader(string(tt.body)))
		if err := h.edge.makeReplayable(r); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		state := &requestState{eas: EASRequest{Cmd: "Sync"}}
		if got := h.edge.answerHeldAtOnce(rec, r, state); got != tt.want {
			t.Fatalf("%s: answered at once = %v, want %v", tt.name, got, tt.want)
		}
		if tt.want {
			if what := drainedSyncOK(rec.Result(), rec.Body.String()); what != "" {
				t.Fatalf("%s: %s", tt.name, what)
			}
		}
	}
}
