package edge

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// TestAttackEarlySuccessLeavesTheBody: Exchange answers mallory's POST with
// a success without reading its body and keeps the connection, against
// RFC 9112 section 9.3 ("A server MUST read the entire request message body
// or close the connection after sending its response"). The body, a second
// request, is read by Exchange as the next request on the connection. No
// client can see from a success that the body was left unread (nginx keeps
// such a connection: its rule is only that the body was sent, and so does
// http.Transport), and the edge keeps connections after a success (every
// EAS command is a POST).
//
// What holds: Exchange answers the smuggled request as soon as it reads
// it, before another request goes on the connection. That answer is bytes
// nobody asked for on an idle connection: the relay's poll before reuse
// and http.Transport's read of its idle connections drop the connection,
// and bob's request goes on a new one and gets his own answer.
//
// What does not (skipped, the issue 25 follow-up's report): Exchange
// answering the smuggled request only after bob's request came on the
// connection (a slow smuggled request). bob then gets the smuggled answer,
// on both engines, as behind nginx or http.Transport: the answer to a
// request cannot be told from a late answer to another. Only Exchange
// breaking section 9.3 opens it.
func TestAttackEarlySuccessLeavesTheBody(t *testing.T) {
	for _, e := range engines {
		for _, late := range []bool{false, true} {
			name := e.name + "/answered at once"
			if late {
				name = e.name + "/answered after the next request"
			}
			t.Run(name, func(t *testing.T) {
				if !late {
					earlySuccess(t, e.engine)
					return
				}
				t.Skip("known, not closable in HTTP/1.1 (see the test's doc): the smuggled request answered late is read as bob's answer, on both engines")
				smuggledThroughAnEarlyAnswer(t, e.engine, "", okAnswer("ok"), http.StatusOK, "ok")
			})
		}
	}
}

// earlySuccess runs TestAttackEarlySuccessLeavesTheBody's case that holds
// on engine.
func earlySuccess(t *testing.T, engine string) {
	h, x, bob, up := smuggle(t, engine, "", okAnswer("ok"), http.StatusOK, "ok")
	up.write(okAnswer("SMUGGLED answer for mallory"))
	// The answer has reached the edge: http.Transport's idle read drops the
	// connection at once; the relay finds it at its poll before reuse.
	if engine == "net/http" {
		_ = up.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := up.br.ReadByte(); err != io.EOF {
			t.Fatalf("the edge kept the connection the unasked-for answer came on (read %v)", err)
		}
	} else {
		waitFor(t, "the unasked-for answer on the kept connection", func() bool { return idleReadable(h) })
	}
	bob.sendWith(syncPath, "", "<Sync/>")
	up2 := x.accept()
	if r := up2.request(); r.URL.Query().Get("User") != "alice" {
		t.Fatalf("the new connection carried %s, want bob's Sync", r.URL)
	}
	up2.write(okAnswer("bob's answer"))
	expectBody(t, bob, http.StatusOK, "bob's answer")
}

// idleReadable reports whether h's relay keeps one idle connection to
// Exchange and bytes wait on it.
func idleReadable(h *harness) bool {
	p := h.edge.relay
	key := poolKey(h.edge.upstreams.route.Load().urls[0])
	p.mu.Lock()
	defer p.mu.Unlock()
	host := p.hosts[key]
	if host == nil || len(host.idle) != 1 {
		return false
	}
	pc := host.idle[0]
	if err := pc.raw.Read(pc.poll); err != nil {
		return false
	}
	return pc.pollErr == nil && pc.ready
}
