package edge

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/safefile"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// TLS session resumption across edges (issue 24).
//
// A device reconnecting after a drain pays a full handshake with its client
// certificate (about 1 ms of the edge's core, docs/sizing.md). With
// segmesh.edge.tlsSessionTicketKeyFile every edge encrypts its session
// tickets under the same keys, so the device resumes on whichever edge it
// reaches, as nginx's ssl_session_ticket_key does. The ticket cryptography
// is crypto/tls's (Config.SetSessionTicketKeys on the Config that
// GetConfigForClient returns); this file only reads the keys.
//
// What a resumed session keeps and what it does not:
//   - crypto/tls puts the client's certificate chain in the ticket and
//     restores it as ConnectionState.PeerCertificates;
//   - VerifyConnection runs on every handshake, resumed ones included
//     (crypto/tls: handshake_server.go doResumeHandshake,
//     handshake_server_tls13.go readClientCertificate), and the edge's
//     verifyConnection verifies that chain again against the trust store
//     and the CRL snapshot of the moment: a certificate revoked, or a CA
//     removed, after the first handshake is refused on resumption, and an
//     edge with other trust judges the chain by its own;
//   - the identity is derived from that certificate, per connection.
//
// The key file is as sensitive as a CA key: whoever holds it can decrypt
// recorded tickets and make tickets naming any certificate. It is
// therefore refused, not merely warned about, as OpenSSH refuses a private
// key and sshd's StrictModes an authorized_keys file, when another user
// could read or replace it: group or others may write it or others read
// it, it is owned by neither the process's user nor root, or its
// directory is (safefile.CheckPrivate). A warning would leave the edge
// encrypting tickets under a key someone else may hold. It is never
// logged, and shown on /status only as fingerprints and an age.

const (
	// ticketKeySize is the size of one key (crypto/tls's [32]byte).
	ticketKeySize = 32
	// maxTicketKeys bounds the keys one file holds: the current one and a
	// few older ones still decrypting recent tickets.
	maxTicketKeys = 16
	// defaultTicketKeyMaxAge is the age (since the file was last written)
	// past which the edge says the keys want rotating.
	defaultTicketKeyMaxAge = 24 * time.Hour
)

// Setting names.
const (
	keyTicketKeyFile   = "segmesh.edge.tlsSessionTicketKeyFile"
	keyTicketKeyMaxAge = "segmesh.edge.tlsSessionTicketKeyMaxAgeHours"
)

// ticketKeySettings are the settings of the shared session ticket keys; a
// reload applies them (the key file rewritten in place counts as a change:
// segmesh run compares the files' content).
var ticketKeySettings = []string{keyTicketKeyFile, keyTicketKeyMaxAge}

// ticketKeyFix is how to make a key file.
const ticketKeyFix = "make it with `head -c 32 /dev/urandom > FILE && chmod 600 FILE` and give every edge the same file; " +
	"rotate by writing a new 32-byte key in front of the old ones (the first encrypts, all decrypt); " +
	"or leave " + keyTicketKeyFile + " empty for per-process keys"

// ticketKeySet is one reading of the key file.
type ticketKeySet struct {
	path    string
	keys    [][ticketKeySize]byte
	written time.Time
	// fingerprints identify the keys on /status (a truncated SHA-256 of a
	// label and the key: it tells edges' files apart, not the key).
	fingerprints []string
	// tmpl is the handshake configuration with these keys set; every
	// handshake's Config is cloned from it (crypto/tls's Clone keeps the
	// keys, so they are derived once, not per handshake).
	tmpl *tls.Config
}

// readTicketKeys reads and checks the key file at path. The error is a
// *config.Problem naming the setting and the fix; it never holds key bytes.
func readTicketKeys(path string) (*ticketKeySet, error) {
	bad := func(msg string) error {
		return &config.Problem{Severity: config.SeverityError, Key: keyTicketKeyFile, Value: path, Message: msg, Fix: ticketKeyFix}
	}
	// Read through safefile.ReadChecked: opened without blocking (os.Open
	// of a FIFO waits for a writer, and would hang config check and the
	// reload that reads it), refused, as OpenSSH refuses a private key,
	// when another user could read or replace it (safefile.CheckPrivate on
	// the opened descriptor: its mode, its owner or its directory), and
	// read with a bound, what was read cleared on an error.
	var st os.FileInfo
	data, err := safefile.ReadChecked(path, maxTicketKeys*ticketKeySize, func(p string, fi os.FileInfo) error {
		st = fi
		return safefile.CheckPrivate(p, fi)
	})
	if e, ok := errors.AsType[*safefile.ExposedError](err); ok {
		return nil, &config.Problem{Severity: config.SeverityError, Key: keyTicketKeyFile, Value: path,
			Message: e.About(path) + ", and whoever reads it can decrypt recorded sessions and whoever replaces it can resume any device's", Fix: e.Fix}
	}
	switch {
	case errors.Is(err, safefile.ErrNotRegular):
		return nil, bad("is not a regular file")
	case errors.Is(err, safefile.ErrTooLarge):
		return nil, bad(fmt.Sprintf("holds more than %d keys (%d bytes): drop the oldest", maxTicketKeys, maxTicketKeys*ticketKeySize))
	case err != nil:
		return nil, bad("cannot be read: " + err.Error())
	}
	defer clear(data)
	switch n := len(data); {
	case n == 0:
		return nil, bad("holds no key (fewer than 1)")
	case n%ticketKeySize != 0:
		return nil, bad(fmt.Sprintf("is %d bytes, not whole keys of %d random bytes (a text file, a newline at the end, or base64?)", n, ticketKeySize))
	}
	set := &ticketKeySet{path: path, written: st.ModTime()}
	var zero [ticketKeySize]byte
	for i := 0; i < len(data); i += ticketKeySize {
		var k [ticketKeySize]byte
		copy(k[:], data[i:])
		if k == zero {
			clear(set.keys) // the keys before it
			return nil, bad(fmt.Sprintf("key %d is all zero bytes (made from /dev/zero?)", i/ticketKeySize+1))
		}
		if isText(k[:]) {
			clear(set.keys)
			clear(k[:])
			return nil, bad(fmt.Sprintf("key %d is text (hex, base64 or a passphrase?), not %d random bytes: whoever guesses it can make a ticket naming any device's certificate",
				i/ticketKeySize+1, ticketKeySize))
		}
		set.keys = append(set.keys, k)
		sum := sha256.Sum256(append([]byte("segmesh session ticket key\x00"), k[:]...))
		set.fingerprints = append(set.fingerprints, hex.EncodeToString(sum[:6]))
	}
	return set, nil
}

// isText reports whether every byte of k is printable ASCII or a line
// break: hex, base64, a passphrase. 32 random bytes are all text with a
// probability of (98/256)^32, about 5e-14, so no real key is refused.
func isText(k []byte) bool {
	for _, b := range k {
		if (b < 0x20 || b > 0x7e) && b != '\t' && b != '\n' && b != '\r' {
			return false
		}
	}
	return true
}

// ticketKeyProblems is what Validate (and so `config check` and the start)
// finds in the key file c names.
func ticketKeyProblems(c *Config) []config.Problem {
	if c.TicketKeyFile == "" {
		return nil
	}
	if _, err := readTicketKeys(c.TicketKeyFile); err != nil {
		if p, ok := err.(*config.Problem); ok {
			return []config.Problem{*p}
		}
	}
	return nil
}

// sessionTickets holds the shared keys in force and counts handshakes.
type sessionTickets struct {
	now func() time.Time
	// base is the listener's per-handshake Config without keys (set by
	// baseTLSConfig); cur the keys in force, nil for per-process keys.
	base   *tls.Config
	cur    atomic.Pointer[ticketKeySet]
	maxAge atomic.Int64 // time.Duration
	// resumed and full count the handshakes verifyConnection accepted.
	resumed, full atomic.Int64
}

// config returns the Config a handshake clones: the keyed template with
// shared keys, else base (crypto/tls then uses the listener's own
// automatically rotated keys).
func (t *sessionTickets) config() *tls.Config {
	if k := t.cur.Load(); k != nil && k.tmpl != nil {
		return k.tmpl
	}
	return t.base
}

// use puts set in force (nil: per-process keys again) with maxAge.
func (t *sessionTickets) use(set *ticketKeySet, maxAge time.Duration) {
	if set != nil && t.base != nil {
		set.tmpl = t.base.Clone()
		set.tmpl.SetSessionTicketKeys(set.keys)
	}
	t.maxAge.Store(int64(maxAge))
	t.cur.Store(set)
}

// handshake counts one accepted handshake.
func (t *sessionTickets) handshake(resumed bool) {
	if resumed {
		t.resumed.Add(1)
	} else {
		t.full.Add(1)
	}
}

// age returns how long ago the key file in force was written and whether
// that is past the maximum; ok is false without a shared key file.
func (t *sessionTickets) age() (age time.Duration, stale, ok bool) {
	k := t.cur.Load()
	if k == nil {
		return 0, false, false
	}
	age = max(t.now().Sub(k.written), 0)
	return age, age > time.Duration(t.maxAge.Load()), true
}

// notes are /readyz's notes: a key file past its maximum age.
func (t *sessionTickets) notes() []string {
	age, stale, ok := t.age()
	if !ok || !stale {
		return nil
	}
	k := t.cur.Load()
	return []string{fmt.Sprintf("TLS session ticket key file %s was last written %s ago, longer than %s (%s): rotate it on every edge, a new 32-byte key in front of the old ones",
		k.path, age.Round(time.Minute), keyTicketKeyMaxAge, time.Duration(t.maxAge.Load()))}
}

// status is the edge's /status part on resumption: never a key.
func (t *sessionTickets) status() map[string]any {
	st := map[string]any{"resumed_handshakes": t.resumed.Load(), "full_handshakes": t.full.Load()}
	k := t.cur.Load()
	if k == nil {
		st["ticket_keys"] = "per process (segmesh.edge.tlsSessionTicketKeyFile not set: a device moving to another edge does a full handshake)"
		return st
	}
	age, stale, _ := t.age()
	st["ticket_key_file"] = k.path
	st["ticket_key_fingerprints"] = k.fingerprints
	st["ticket_key_written"] = k.written.UTC().Format(time.RFC3339)
	st["ticket_key_age_seconds"] = int64(age.Seconds())
	st["ticket_key_max_age_hours"] = strconv.FormatFloat(time.Duration(t.maxAge.Load()).Hours(), 'f', -1, 64)
	st["ticket_key_stale"] = stale
	return st
}

// registerMetrics reports the handshakes and the key file's age.
func (t *sessionTickets) registerMetrics(m metric.Meter) error {
	if m == nil {
		m = noop.NewMeterProvider().Meter("segmesh/edge")
	}
	hs, err := m.Int64ObservableCounter(telemetry.MetricEdgeTLSHandshakes,
		metric.WithDescription("Device TLS handshakes the edge accepted, by result: resumed (a session ticket; the certificate verified again) or full."))
	if err != nil {
		return err
	}
	age, err := m.Float64ObservableGauge(telemetry.MetricEdgeTLSTicketKeyAge, metric.WithUnit("s"),
		metric.WithDescription("Seconds since the shared session ticket key file in force was written; absent without one."))
	if err != nil {
		return err
	}
	stale, err := m.Int64ObservableGauge(telemetry.MetricEdgeTLSTicketKeyStale,
		metric.WithDescription("1 while the shared session ticket key file is older than segmesh.edge.tlsSessionTicketKeyMaxAgeHours, else 0."))
	if err != nil {
		return err
	}
	resumedOpt := metric.WithAttributeSet(attribute.NewSet(attribute.String(telemetry.AttrResult, "resumed")))
	fullOpt := metric.WithAttributeSet(attribute.NewSet(attribute.String(telemetry.AttrResult, "full")))
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(hs, t.resumed.Load(), resumedOpt)
		o.ObserveInt64(hs, t.full.Load(), fullOpt)
		a, s, ok := t.age()
		if ok {
			o.ObserveFloat64(age, a.Seconds())
		}
		o.ObserveInt64(stale, map[bool]int64{false: 0, true: 1}[s])
		return nil
	}, hs, age, stale)
	return err
}

// prepareTicketKeys reads the key file next names (a reload); the commit
// puts it in force for the next handshakes. A file that does not read
// is refused and the keys in force stay. Connections already open are not
// touched; tickets issued under a key no longer in the file stop resuming
// (a full handshake instead).
func (s *Service) prepareTicketKeys(next *Config) (commit func(), err error) {
	var set *ticketKeySet
	if next.TicketKeyFile != "" {
		if set, err = readTicketKeys(next.TicketKeyFile); err != nil {
			return nil, fmt.Errorf("edge: %w (the session ticket keys in use stay)", err)
		}
	}
	return func() {
		old := s.sessions.cur.Load()
		s.sessions.use(set, next.TicketKeyMaxAge)
		switch {
		case set == nil && old != nil:
			s.log.Info("TLS session ticket keys: per process again; devices moving to another edge do a full handshake")
		case set != nil && (old == nil || !slices.Equal(old.fingerprints, set.fingerprints)):
			s.log.Info("TLS session ticket keys changed; new tickets use the first, tickets of keys no longer in the file do not resume",
				"file", set.path, "keys", len(set.keys), "first_fingerprint", set.fingerprints[0])
		}
	}, nil
}
