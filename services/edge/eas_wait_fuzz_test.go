package edge

import "testing"

// FuzzSyncWaits feeds arbitrary bytes as a device's WBXML Sync body to the
// edge's hand-written WBXML scan (the drain's pure-wait test): nothing
// panics, and a Sync whose first child is Commands (client changes) is
// never a pure wait, whatever follows: answering it with an empty Sync at
// the drain would lose the device's changes.
func FuzzSyncWaits(f *testing.F) {
	for _, b := range [][]byte{wbxmlSyncWait, wbxmlSyncHeartbeat, wbxmlSyncWaitWithChanges, wbxmlSyncPlain,
		{0x03, 0x01, 0x6a, 0x00, 0x00, 0x0d, 0x45, 0x48, 0x03, '9', 0x00, 0x01, 0x01},
		{0x03, 0x00, 0x85, 0x80, 0x80, 0x80, 0x80, 0x01}} {
		f.Add(b)
	}
	header := []byte{0x03, 0x01, 0x6a, 0x00, 0x45} // WBXML 1.3, EAS public id, UTF-8, no string table; <Sync>
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = syncWaits(body)
		withChanges := append(append(append([]byte(nil), header...), 0x16), body...) // <Sync><Commands/>…
		if syncWaits(withChanges) {
			t.Fatalf("a Sync with client changes read as a pure wait: % x", withChanges)
		}
	})
}
