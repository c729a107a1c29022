package edge

import "testing"

// TestAttackTicketCallKeys: concurrent ticket misses share one call per
// key (singleflight), so two different (user, SPN) pairs must never make
// the same key, however a UPN is spelled to collide with another's UPN and
// SPN run together; a collision would hand one user the other's ticket.
// Attacker review of 9de4039; held.
func TestAttackTicketCallKeys(t *testing.T) {
	keys := []ticketKey{
		{"alice@LAB.TEST", "HTTP/mail.lab.test"},
		{"alice@LAB.TESTHTTP/mail.lab.test", ""},
		{"alice@LAB.TESTH", "TTP/mail.lab.test"},
		{"14:alice@LAB.TEST", "HTTP/mail.lab.test"},
		{"", "14:alice@LAB.TESTHTTP/mail.lab.test"},
		{"alice@lab.test", "HTTP/mail.lab.test"},
		{"ALICE@LAB.TEST", "HTTP/mail.lab.test"},
		{"alice@LAB.TEST", "http/mail.lab.test"},
		{"alice\x00@LAB.TEST", "HTTP/mail.lab.test"},
	}
	seen := map[string]ticketKey{}
	for _, k := range keys {
		s := k.String()
		if prev, ok := seen[s]; ok {
			t.Errorf("%+v and %+v share the call key %q", prev, k, s)
		}
		seen[s] = k
	}
}
