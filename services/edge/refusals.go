package edge

import (
	"sync"
	"time"
)

// refusalLogSize is how many recent refusals the status page shows.
const refusalLogSize = 50

// refusalRecord is one refused handshake or request, as the admin status
// page lists it (pkg/admin's recent_refusals: time, reason, subject, upn,
// status). It holds no credential.
type refusalRecord struct {
	Time    time.Time `json:"time"`
	Reason  string    `json:"reason"`
	Subject string    `json:"subject,omitempty"`
	Issuer  string    `json:"issuer,omitempty"`
	Serial  string    `json:"serial,omitempty"`
	UPN     string    `json:"upn,omitempty"`
	Status  string    `json:"status"`
}

// refusalLog keeps the newest refusals in a fixed ring. The zero value is
// ready to use.
type refusalLog struct {
	mu   sync.Mutex
	ring [refusalLogSize]refusalRecord
	next int
	n    int
}

// add records r, dropping the oldest when full.
func (l *refusalLog) add(r refusalRecord) {
	l.mu.Lock()
	l.ring[l.next] = r
	l.next = (l.next + 1) % refusalLogSize
	if l.n < refusalLogSize {
		l.n++
	}
	l.mu.Unlock()
}

// recent returns the records, newest first.
func (l *refusalLog) recent() []refusalRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]refusalRecord, 0, l.n)
	for i := 1; i <= l.n; i++ {
		out = append(out, l.ring[(l.next-i+refusalLogSize)%refusalLogSize])
	}
	return out
}
