package edge

import (
	"bytes"
	"io"
	"net/http"
	"strings"
)

// An EAS Sync can be a long poll too: with a Wait (minutes) or a
// HeartbeatInterval (seconds) child of its Sync element, Exchange holds it
// up to 59 minutes until something changes (MS-ASCMD 2.2.3.198,
// 2.2.3.88.2, 3.1.5.4). The drain answers such a Sync as Exchange does when the wait ends with no changes: an empty
// Sync response, 200 with no body (2.2.1.21.2, example 4.5.10), with
// Connection: close, on which the device sends its Sync again, elsewhere.
//
// Only a pure wait the edge can read is answered so. An empty Sync request
// (no body) repeats the cached request (2.2.1.21.1), which may or may not
// wait: it is left to finish at Exchange as any other request, because an
// empty response to a Sync Exchange was about to answer with changes could
// leave the device behind a SyncKey Exchange has moved on
// (TestLabSIGTERMUnderLoad's in-flight Syncs are such). A Sync that carries
// client changes (a
// Commands element) is left to finish or be cut as any other request, as
// an empty response would drop the answers to its changes (the server IDs
// of its adds). Exchange answers such a Sync at once anyway.

// maxWaitSyncBytes bounds the body read to tell a waiting Sync: a pure
// wait names a few collections, and a larger body is left alone.
const maxWaitSyncBytes = 4096

// WBXML tokens (WAP-192, MS-ASWBXML) the scan needs: global tokens and the
// AirSync code page (0) tags.
const (
	wbxmlSwitchPage = 0x00
	wbxmlEnd        = 0x01
	wbxmlStrI       = 0x03
	wbxmlStrT       = 0x83
	wbxmlOpaque     = 0xc3
	wbxmlContent    = 0x40 // a tag with content
	wbxmlAttributes = 0x80 // a tag with attributes (EAS uses none)

	airSyncSync              = 0x05
	airSyncCommands          = 0x16
	airSyncWait              = 0x24
	airSyncHeartbeatInterval = 0x29
)

// syncWaits reports whether body, a WBXML EAS Sync request, is a pure
// wait: its Sync element has a Wait or HeartbeatInterval child and nothing
// in it is a Commands element (client changes). Anything it cannot read
// (not WBXML, another root, tokens EAS does not use, truncated) is not.
func syncWaits(body []byte) bool {
	p := 1                     // the version byte
	mb := func() (int, bool) { // mb_u_int32
		v := 0
		for range 5 {
			if p >= len(body) {
				return 0, false
			}
			b := body[p]
			p++
			v = v<<7 | int(b&0x7f)
			if b&0x80 == 0 {
				return v, true
			}
		}
		return 0, false
	}
	if len(body) < 4 {
		return false
	}
	pub, ok := mb()
	if !ok {
		return false
	}
	if pub == 0 { // the public identifier is in the string table
		if _, ok = mb(); !ok {
			return false
		}
	}
	if _, ok = mb(); !ok { // charset
		return false
	}
	n, ok := mb() // string table
	if !ok || n > len(body)-p {
		return false
	}
	p += n
	var page byte
	depth, waits, root := 0, false, false
	for p < len(body) {
		t := body[p]
		p++
		switch t {
		case wbxmlSwitchPage:
			if p >= len(body) {
				return false
			}
			page = body[p]
			p++
		case wbxmlEnd:
			if depth--; depth < 0 {
				return false
			}
		case wbxmlStrI:
			i := bytes.IndexByte(body[p:], 0)
			if i < 0 {
				return false
			}
			p += i + 1
		case wbxmlStrT:
			if _, ok := mb(); !ok {
				return false
			}
		case wbxmlOpaque:
			n, ok := mb()
			if !ok || n > len(body)-p {
				return false
			}
			p += n
		default:
			if t&0x3f < 0x05 || t&wbxmlAttributes != 0 {
				return false // a global token or attributes: not an EAS request
			}
			id := t & 0x3f
			switch {
			case depth == 0 && (root || page != 0 || id != airSyncSync):
				return false // one root, and it is Sync
			case depth == 0:
				root = true
			case page == 0 && id == airSyncCommands:
				return false
			case page == 0 && depth == 1 && (id == airSyncWait || id == airSyncHeartbeatInterval):
				waits = true
			}
			if t&wbxmlContent != 0 {
				depth++
			}
		}
	}
	return waits && depth == 0
}

// syncWait is how a Sync may wait at Exchange.
type syncWait uint8

const (
	// syncNoWait: Exchange answers at once (or the edge cannot tell).
	syncNoWait syncWait = iota
	// syncWaiting: a Wait or HeartbeatInterval and no client changes.
	syncWaiting
)

// waitOf tells how r, an EAS command of state, may wait at Exchange: a
// body kept for the 401 retry (makeReplayable) that syncWaits accepts. Only
// Syncs of at most maxWaitSyncBytes are read; an empty Sync request is
// syncNoWait (above).
func waitOf(r *http.Request, state *requestState) syncWait {
	if !strings.EqualFold(state.eas.Cmd, "Sync") || r.Method != http.MethodPost {
		return syncNoWait
	}
	if r.ContentLength <= 0 || r.ContentLength > maxWaitSyncBytes || r.GetBody == nil {
		return syncNoWait
	}
	body, err := r.GetBody()
	if err != nil {
		return syncNoWait
	}
	defer body.Close()
	var buf [maxWaitSyncBytes]byte
	n, err := io.ReadFull(body, buf[:r.ContentLength])
	if err != nil || !syncWaits(buf[:n]) {
		return syncNoWait
	}
	return syncWaiting
}

// writeEmptySync answers a waiting Sync as Exchange does when its wait
// ends with no changes (an empty Sync response), with Connection: close.
func writeEmptySync(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Length", "0")
	h.Set("Cache-Control", "private")
	h.Set("Connection", "close")
	w.WriteHeader(http.StatusOK)
}
