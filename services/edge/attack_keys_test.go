package edge

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

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

// TestAttack401RetryKeepsTheUser: Exchange refuses the first request of
// several users at once with 401; each retry fetches a new ticket through
// the shared calls and must carry its own user's ticket, never another's
// (Exchange names the user the retry's ticket is for). One round per user:
// the 401 rule refreshes a user's ticket at most once an interval. Both
// paths. Attacker review of 9de4039 and the 401 rule; held.
func TestAttack401RetryKeepsTheUser(t *testing.T) {
	onBothPaths(t, nil, func(t *testing.T, p policyPath, h *harness) {
		users := []string{"alice", "bob", "carol", "dave", "erin", "frank"}
		var mu sync.Mutex
		refused := map[string]bool{}
		h.exchange.handler = func(w http.ResponseWriter, r *http.Request, user string) {
			mu.Lock()
			first := !refused[user]
			refused[user] = true
			mu.Unlock()
			if first {
				w.Header().Set("WWW-Authenticate", "Negotiate")
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = fmt.Fprintf(w, "user=%s", user)
		}
		errs := make(chan string, len(users))
		for i, u := range users {
			cert := h.ca.issue(t, certOpts{cn: u, serial: int64(5000 + i)})
			d := h.device(t, &cert)
			go func() {
				d.sendWith(p.path, "", "<Request/>")
				resp, body, err := d.read()
				switch {
				case err != nil:
					errs <- fmt.Sprintf("%s: %v", u, err)
				case resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "user="+u+"@"):
					errs <- fmt.Sprintf("%s got %d %q", u, resp.StatusCode, body)
				default:
					errs <- ""
				}
			}()
		}
		for range users {
			if e := <-errs; e != "" {
				t.Error(e)
			}
		}
	})
}
