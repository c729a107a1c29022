package s4u

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/segmesh/segmesh/pkg/krbhint"
)

// SessionKeyError reports a KDC reply whose session key has an encryption
// type the request did not offer. RFC 4120 section 3.1.3 has the KDC pick
// it from the request's list, and AD does; a session key outside it (RC4
// with segmesh.ticket.allowRc4 off, whose key is weak) comes from a KDC
// that ignores the list or one that should not be there. The ticket is not
// used. It is definitive.
type SessionKeyError struct {
	// Stage is the exchange whose reply was refused.
	Stage Stage
	// Realm is the realm whose KDC answered.
	Realm string
	// Server is the reply's ticket's server, as name@realm.
	Server string
	// Got is the session key's etype.
	Got int32
	// Offered are the etypes the request offered, most preferred first.
	Offered []int32
	// Hint is the fix on the domain controller (krbhint.SessionKeyEtype).
	Hint string
}

// Error names the stage, the etypes and the fix.
func (e *SessionKeyError) Error() string {
	offered := make([]string, len(e.Offered))
	for i, et := range e.Offered {
		offered[i] = strconv.Itoa(int(et))
	}
	return fmt.Sprintf("s4u: %s in realm %s: the KDC chose a session key of etype %d for %s, which the request did not offer (it offered %s): the ticket is refused: %s",
		e.Stage, e.Realm, e.Got, e.Server, strings.Join(offered, ", "), e.Hint)
}

// Temporary reports false: the KDC will answer the same way again.
func (e *SessionKeyError) Temporary() bool { return false }

// replyError wraps an error opening a KDC reply with the stage and realm;
// a *SessionKeyError gets them as fields, and its hint.
func (c *Client) replyError(stage Stage, realm string, err error) error {
	var se *SessionKeyError
	if errors.As(err, &se) {
		se.Stage, se.Realm = stage, realm
		se.Hint = krbhint.SessionKeyEtype(krbhint.Params{Account: c.cfg.Service, SPN: se.Server})
		return se
	}
	return fmt.Errorf("s4u: %s in realm %s: %w", stage, realm, err)
}
