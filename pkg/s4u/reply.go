package s4u

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/krbcrypt"
)

// rawKDCRep is KDC-REP with the ticket kept as raw bytes, to hand the
// ticket on exactly as the KDC encoded it.
type rawKDCRep struct {
	PVNO    int                  `asn1:"explicit,tag:0"`
	MsgType int                  `asn1:"explicit,tag:1"`
	PAData  types.PADataSequence `asn1:"explicit,optional,tag:2"`
	CRealm  string               `asn1:"generalstring,explicit,tag:3"`
	CName   types.PrincipalName  `asn1:"explicit,tag:4"`
	Ticket  asn1.RawValue        `asn1:"explicit,tag:5"`
	EncPart types.EncryptedData  `asn1:"explicit,tag:6"`
}

// kdcReply is a decoded AS-REP or TGS-REP before decryption.
type kdcReply struct {
	PAData    types.PADataSequence
	CRealm    string
	CName     types.PrincipalName
	Ticket    messages.Ticket
	TicketDER []byte
	EncPart   types.EncryptedData
}

var errNotReply = errors.New("not a KDC reply")

// decodeReply decodes an AS-REP (asRep true) or TGS-REP. It never panics on
// malformed input.
func decodeReply(b []byte, asRep bool) (*kdcReply, error) {
	tag, mt := asnAppTag.TGSREP, msgtype.KRB_TGS_REP
	if asRep {
		tag, mt = asnAppTag.ASREP, msgtype.KRB_AS_REP
	}
	var m rawKDCRep
	rest, err := asn1.UnmarshalWithParams(b, &m, fmt.Sprintf("application,explicit,tag:%d", tag))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotReply, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errNotReply, len(rest))
	}
	if m.MsgType != mt {
		return nil, fmt.Errorf("%w: message type %d, want %d", errNotReply, m.MsgType, mt)
	}
	var tkt messages.Ticket
	if err := tkt.Unmarshal(m.Ticket.Bytes); err != nil {
		return nil, fmt.Errorf("%w: ticket: %v", errNotReply, err)
	}
	if len(tkt.SName.NameString) == 0 {
		return nil, fmt.Errorf("%w: ticket without server name", errNotReply)
	}
	return &kdcReply{
		PAData:    m.PAData,
		CRealm:    m.CRealm,
		CName:     m.CName,
		Ticket:    tkt,
		TicketDER: append([]byte(nil), m.Ticket.Bytes...),
		EncPart:   m.EncPart,
	}, nil
}

// open decrypts the reply's encrypted part with key under usage, checks the
// nonce and the session key's etype (one of offered, the request's list)
// and returns the resulting Ticket.
func (r *kdcReply) open(key types.EncryptionKey, usage uint32, nonce int, offered []int32) (*Ticket, error) {
	pt, err := krbcrypt.DecryptEncPart(r.EncPart, key, usage)
	if err != nil {
		return nil, fmt.Errorf("decrypt reply: %w", err)
	}
	var enc messages.EncKDCRepPart
	if err := enc.Unmarshal(pt); err != nil {
		return nil, fmt.Errorf("decode reply's encrypted part: %w", err)
	}
	if enc.Nonce != nonce {
		return nil, errors.New("reply nonce does not match the request")
	}
	if len(enc.Key.KeyValue) == 0 {
		return nil, errors.New("reply without a session key")
	}
	if _, err := usableEtype(enc.Key.KeyType); err != nil {
		return nil, fmt.Errorf("reply session key: %w", err)
	}
	if !slices.Contains(offered, enc.Key.KeyType) {
		// RFC 4120 section 3.1.3: the KDC picks the session key's etype
		// from the request's list. One outside it (RC4 when the gateway
		// turned RC4 off) comes from a KDC that ignores the list, or one
		// that should not be there.
		return nil, &SessionKeyError{Server: principalString(enc.SName, enc.SRealm), Got: enc.Key.KeyType, Offered: slices.Clone(offered)}
	}
	// The ticket's server name is in clear; only the encrypted part's is
	// the KDC's word. Everything after (referrals, renewal) reads the
	// ticket's, so they must agree.
	if !sameNameFold(r.Ticket.SName, enc.SName) || !strings.EqualFold(r.Ticket.Realm, enc.SRealm) {
		return nil, fmt.Errorf("the ticket's server %s differs from the one in the reply's encrypted part, %s",
			principalString(r.Ticket.SName, r.Ticket.Realm), principalString(enc.SName, enc.SRealm))
	}
	start := enc.StartTime
	if start.IsZero() {
		start = enc.AuthTime
	}
	return &Ticket{
		Ticket:     r.Ticket,
		DER:        r.TicketDER,
		SessionKey: enc.Key,
		CName:      r.CName,
		CRealm:     r.CRealm,
		SName:      enc.SName,
		SRealm:     enc.SRealm,
		Flags:      enc.Flags,
		AuthTime:   enc.AuthTime,
		StartTime:  start,
		EndTime:    enc.EndTime,
		RenewTill:  enc.RenewTill,
	}, nil
}

// openTGSRep decodes and decrypts a TGS-REP with the TGT session key.
func openTGSRep(b []byte, tgtKey types.EncryptionKey, nonce int, offered []int32) (*Ticket, error) {
	r, err := decodeReply(b, false)
	if err != nil {
		return nil, err
	}
	return r.open(tgtKey, keyusage.TGS_REP_ENCPART_SESSION_KEY, nonce, offered)
}
