package edge

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/chksumtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// negotiator builds the Authorization header for one ticket. Every call makes
// a new authenticator (new timestamp and sequence number): Exchange keeps a
// replay cache and answers 401 to a header it has seen.
type negotiator interface {
	// header returns "Negotiate <base64 SPNEGO token>" for a request at now.
	header(now time.Time) (string, error)
}

// negotiatorFactory prepares a negotiator once per ticket.
type negotiatorFactory func(t *Ticket) (negotiator, error)

// TODO(edge): switch newKRB5Negotiator to pkg/negotiate when it lands; it
// marshals the ticket and SPNEGO framing once and only encrypts the small
// authenticator per request (a few µs instead of gokrb5's ~90 µs).

// krb5Negotiator builds the token with gokrb5's messages: correct, and used
// until pkg/negotiate takes over the hot path.
type krb5Negotiator struct {
	tkt    messages.Ticket
	key    types.EncryptionKey
	cname  types.PrincipalName
	crealm string
}

// newKRB5Negotiator parses t once. The authenticator uses the ticket reply's
// cname and crealm exactly (the acceptor compares crealm strictly; an
// enterprise name keeps its "\@").
func newKRB5Negotiator(t *Ticket) (negotiator, error) {
	var tkt messages.Ticket
	if err := tkt.Unmarshal(t.DER); err != nil {
		return nil, fmt.Errorf("parse service ticket: %w", err)
	}
	return &krb5Negotiator{
		tkt:    tkt,
		key:    types.EncryptionKey{KeyType: t.Etype, KeyValue: t.SessionKey},
		cname:  types.PrincipalName{NameType: t.CNameType, NameString: strings.Split(t.CName, "/")},
		crealm: t.CRealm,
	}, nil
}

// gssChecksum is the RFC 4121 4.1.1 authenticator checksum: no channel
// bindings, flags integrity and confidentiality (as browsers send).
func gssChecksum() []byte {
	a := make([]byte, 24)
	binary.LittleEndian.PutUint32(a[:4], 16)
	binary.LittleEndian.PutUint32(a[20:24], uint32(gssapi.ContextFlagInteg|gssapi.ContextFlagConf))
	return a
}

func (n *krb5Negotiator) header(now time.Time) (string, error) {
	var seq [4]byte
	if _, err := rand.Read(seq[:]); err != nil {
		return "", fmt.Errorf("sequence number: %w", err)
	}
	now = now.UTC()
	auth := types.Authenticator{
		AVNO:      iana.PVNO,
		CRealm:    n.crealm,
		CName:     n.cname,
		Cksum:     types.Checksum{CksumType: chksumtype.GSSAPI, Checksum: gssChecksum()},
		Cusec:     now.Nanosecond() / 1000,
		CTime:     now.Truncate(time.Second),
		SeqNumber: int64(binary.BigEndian.Uint32(seq[:]) & 0x3fffffff),
	}
	apreq, err := messages.NewAPReq(n.tkt, n.key, auth)
	if err != nil {
		return "", fmt.Errorf("build AP-REQ: %w", err)
	}
	ab, err := apreq.Marshal()
	if err != nil {
		return "", fmt.Errorf("marshal AP-REQ: %w", err)
	}
	oid, err := asn1.Marshal(gssapi.OIDKRB5.OID())
	if err != nil {
		return "", fmt.Errorf("marshal mech OID: %w", err)
	}
	mech := append(append(oid, 0x01, 0x00), ab...) // TOK_ID KRB_AP_REQ
	tok := spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{
		MechTypes:      []asn1.ObjectIdentifier{gssapi.OIDKRB5.OID()},
		MechTokenBytes: asn1tools.AddASNAppTag(mech, 0),
	}}
	b, err := tok.Marshal()
	if err != nil {
		return "", fmt.Errorf("marshal SPNEGO token: %w", err)
	}
	return "Negotiate " + base64.StdEncoding.EncodeToString(b), nil
}
