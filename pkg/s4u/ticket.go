package s4u

import (
	"strings"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Ticket is a ticket with what its holder needs to use it: the session key
// and the client name exactly as the KDC's reply gave them. The session key
// is secret: never log a Ticket.
type Ticket struct {
	// Ticket is the decoded ticket (its encrypted part stays encrypted).
	Ticket messages.Ticket
	// DER is the ticket exactly as the KDC sent it ([APPLICATION 1]).
	DER []byte
	// SessionKey is the key shared with the ticket's server.
	SessionKey types.EncryptionKey
	// CName and CRealm are the client as in the reply. Use them unchanged in
	// an AP-REQ authenticator: acceptors compare the realm strictly.
	CName  types.PrincipalName
	CRealm string
	// SName and SRealm are the server the ticket is for, as in the reply's
	// encrypted part.
	SName  types.PrincipalName
	SRealm string
	// Flags are the ticket flags from the reply's encrypted part.
	Flags asn1.BitString
	// AuthTime, StartTime, EndTime and RenewTill are the ticket's times.
	// StartTime is AuthTime when the KDC left it out; RenewTill is zero for
	// a ticket that is not renewable.
	AuthTime, StartTime, EndTime, RenewTill time.Time
}

// Forwardable reports whether the ticket has the forwardable flag.
func (t *Ticket) Forwardable() bool { return flagSet(t.Flags, flags.Forwardable) }

// flagSet reports whether flag i is set in f, false when f is too short to
// hold it: gokrb5's types.IsFlagSet indexes past the end of a flags BIT
// STRING shorter than RFC 4120's 32 bits, which a broken or hostile KDC
// sends in a reply's encrypted part, and panicked the TGT refresh, the
// ticket role's renewals and segmesh diagnose (TestAttackPanicOnAKDCReply).
func flagSet(f asn1.BitString, i int) bool {
	return i/8 < len(f.Bytes) && types.IsFlagSet(&f, i)
}

// Renewable reports whether t can still be renewed at now: it has the
// renewable flag and a renew-till, it has not expired, and renewing it
// would extend it (its renew-till lies after its end time).
func (t *Ticket) Renewable(now time.Time) bool {
	return t != nil && flagSet(t.Flags, flags.Renewable) && !t.RenewTill.IsZero() &&
		now.Before(t.EndTime) && t.RenewTill.After(t.EndTime)
}

// Lifetime is EndTime minus StartTime.
func (t *Ticket) Lifetime() time.Duration { return t.EndTime.Sub(t.StartTime) }

// ClientString returns the client as name@REALM (name strings joined by /).
func (t *Ticket) ClientString() string { return principalString(t.CName, t.CRealm) }

func principalString(n types.PrincipalName, realm string) string {
	return strings.Join(n.NameString, "/") + "@" + realm
}
