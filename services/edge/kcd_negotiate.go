package edge

import (
	"fmt"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/negotiate"
)

// negotiator builds the Authorization header for one ticket. Every call makes
// a new authenticator (new timestamp and sequence number): Exchange keeps a
// replay cache and answers 401 to a header it has seen.
type negotiator interface {
	// header returns "Negotiate <base64 SPNEGO token>" with the channel
	// binding cb (zero: none), and the authenticator's time, which
	// Exchange's mutual-authentication reply echoes.
	header(cb negotiate.Binding) (string, time.Time, error)
	// verifyReply checks Exchange's "WWW-Authenticate: Negotiate <AP-REP>"
	// answer to the header made at sent.
	verifyReply(value string, sent time.Time) error
}

// negotiatorFactory prepares a negotiator once per ticket.
type negotiatorFactory func(t *Ticket) (negotiator, error)

// builderNegotiator adapts pkg/negotiate's Builder, which encodes the ticket
// and SPNEGO framing once and per request only encrypts the authenticator.
type builderNegotiator struct{ b *negotiate.Builder }

func (n builderNegotiator) header(cb negotiate.Binding) (string, time.Time, error) {
	return n.b.HeaderStamped(cb)
}

func (n builderNegotiator) verifyReply(value string, sent time.Time) error {
	return n.b.VerifyReply(value, sent)
}

// newNegotiatorFactory returns the factory the edge uses, reading time from now.
// The authenticator carries the ticket reply's cname and crealm exactly (the
// acceptor compares crealm strictly; an enterprise name keeps its "\@").
// All Builders share one Scratch: with a Builder per user, buffers of their
// own would mostly be met cold and refilled after GC.
func newNegotiatorFactory(now func() time.Time) negotiatorFactory {
	sc := new(negotiate.Scratch)
	return func(t *Ticket) (negotiator, error) {
		b, err := negotiate.New(t.DER,
			types.EncryptionKey{KeyType: t.Etype, KeyValue: t.SessionKey},
			types.PrincipalName{NameType: t.CNameType, NameString: strings.Split(t.CName, "/")},
			t.CRealm, negotiate.Options{Now: now, Scratch: sc})
		if err != nil {
			return nil, fmt.Errorf("prepare Negotiate builder: %w", err)
		}
		return builderNegotiator{b: b}, nil
	}
}
