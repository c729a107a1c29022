// Package refresh holds the timing of service-ticket refresh that the edge's
// ticket cache and the ticket role's cache must agree on. They are two roles
// that may not import each other, and the ticket role's steady-state
// simulation models the edge, so the numbers live here once and a test
// checks the relations between them.
package refresh

import "time"

// The edge's per-user ticket cache (services/edge).
const (
	// EdgeHardMargin is how long before its end the edge stops using a
	// cached ticket and waits for a new one.
	EdgeHardMargin = 5 * time.Minute
	// EdgeSoftMargin is how long before its end (plus a random part of
	// EdgeSoftJitter) the edge starts refreshing a ticket in the background
	// while requests go on using it.
	EdgeSoftMargin = 65 * time.Minute
	// EdgeSoftJitter spreads the background refreshes of many users.
	EdgeSoftJitter = 5 * time.Minute
	// EdgeSoftRetry spaces background refreshes of one entry after one that
	// failed or brought no later end time.
	EdgeSoftRetry = 5 * time.Minute
)

// The ticket role's cache (services/ticket).
const (
	// TicketMargin is how long before its end (plus a random part of
	// TicketJitter) the ticket role renews or replaces a cached ticket when
	// asked for it.
	TicketMargin = 75 * time.Minute
	// TicketJitter spreads the ticket role's refreshes.
	TicketJitter = 10 * time.Minute
)

// MaxPingHeartbeat is the longest gap between an always-on device's
// requests: Exchange ActiveSync's Ping HeartbeatInterval is at most 3540 s.
const MaxPingHeartbeat = 3540 * time.Second
