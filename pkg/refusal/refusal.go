package refusal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"time"
)

// DefaultWindow is how long a refusal is remembered: longer than the two
// reloads of one save, shorter than an admin's next try.
const DefaultWindow = time.Minute

// Remembered is how many refusals a Memory holds at most: an admin trying
// passwords in turn gets each refused once within the window, up to a
// number above any sensible lockout threshold.
const Remembered = 16

// Memory holds the definitive refusals of the last window, at most
// Remembered. The zero value is not usable: make one with New. It is safe
// for concurrent use.
type Memory struct {
	window time.Duration
	now    func() time.Time
	key    [32]byte

	mu      sync.Mutex
	entries []entry // oldest first
}

type entry struct {
	digest [sha256.Size]byte
	at     time.Time
	err    error
}

// New returns a Memory that remembers a refusal for window (DefaultWindow
// when 0), reading the time from now (time.Now when nil).
func New(window time.Duration, now func() time.Time) *Memory {
	if window <= 0 {
		window = DefaultWindow
	}
	if now == nil {
		now = time.Now
	}
	m := &Memory{window: window, now: now}
	rand.Read(m.key[:]) // never fails (crypto/rand's documentation)
	return m
}

// digest keys the credentials made of parts (the account, its password,
// what else the server proves).
func (m *Memory) digest(parts []string) [sha256.Size]byte {
	h := hmac.New(sha256.New, m.key[:])
	for _, p := range parts {
		_, _ = fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// Lately returns the remembered refusal of the credentials made of parts
// when it came less than the window ago, saying when it was made and when
// they will be presented again; nil otherwise.
func (m *Memory) Lately(parts ...string) error {
	d := m.digest(parts)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forget()
	for _, r := range slices.Backward(m.entries) {
		if r.digest == d {
			return fmt.Errorf("%w (refused at %s; not asked again before %s, each try counts towards the account's lockout)",
				r.err, r.at.UTC().Format(time.RFC3339), r.at.Add(m.window).UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// Note remembers err as the server's definitive refusal of the credentials
// made of parts; the oldest refusal is forgotten when Remembered are held.
// The caller decides what is definitive (a wrong password, an unknown
// account; not a timeout).
func (m *Memory) Note(err error, parts ...string) {
	d := m.digest(parts)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forget()
	if len(m.entries) == Remembered {
		m.entries = slices.Delete(m.entries, 0, 1)
	}
	m.entries = append(m.entries, entry{digest: d, at: m.now(), err: err})
}

// forget drops the refusals older than the window; m.mu is held.
func (m *Memory) forget() {
	now := m.now()
	m.entries = slices.DeleteFunc(m.entries, func(r entry) bool { return now.Sub(r.at) >= m.window })
}
