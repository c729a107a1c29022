package edge

import (
	"bufio"
	"io"
	"net/http"
	"testing"
)

// TestAttackRelayResendsAfterExchangeReadTheRequest: a request the relay
// sent on a kept-alive connection that Exchange read and then closed
// without answering may have been carried out (a worker process that died
// after submitting a SendMail). Sent again automatically, a POST is carried
// out twice: RFC 9110 section 9.2.2 forbids retrying a non-idempotent
// request, and http.Transport (the net/http engine) does not (its
// Request.isReplayable: GET, HEAD, OPTIONS, TRACE or an Idempotency-Key).
// The device gets the failure and decides. An idempotent request may be
// sent again (TestRelayConnections). Attacker review of 5d59949 (relay).
func TestAttackRelayResendsAfterExchangeReadTheRequest(t *testing.T) {
	const sendMail = "/Microsoft-Server-ActiveSync?Cmd=SendMail&User=alice&DeviceId=DEV1&DeviceType=iPhone"
	h, x, d := relayHarness(t, options{})
	d.sendWith(syncPath, "", "<Sync/>")
	up := x.accept()
	up.request()
	up.write(okAnswer("one"))
	expectBody(t, d, http.StatusOK, "one")
	waitFor(t, "the connection kept", func() bool { return h.edge.relay.idleCount(h.edge.upstreams.route.Load().urls[0]) == 1 })

	d.sendWith(sendMail, "", "<SendMail>to bob</SendMail>")
	if r := up.request(); r.URL.Query().Get("Cmd") != "SendMail" {
		t.Fatalf("upstream got %s, want the SendMail", r.URL)
	}
	// A second connection, if the relay opens one, answers at once: the
	// device's answer then says whether the POST went out again.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case c := <-x.conns:
			defer func() { _ = c.Close() }()
			if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				_, _ = io.WriteString(c, okAnswer("SENT-AGAIN"))
			}
			<-done
		case <-done:
		}
	}()
	_ = up.c.Close() // read and carried out, then the connection dropped
	resp, body, err := d.read()
	if err == nil && body == "SENT-AGAIN" {
		t.Fatalf("the relay sent the POST SendMail again on a new connection after Exchange had read it: the mail goes out twice")
	}
	if err != nil || resp.StatusCode < 500 {
		t.Fatalf("device got %v %q %v, want a 5xx (the request's outcome is unknown)", resp, body, err)
	}
}
