package s4u

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// tgsRequest describes one TGS-REQ.
type tgsRequest struct {
	// realm is the request body's realm (the realm of the KDC asked).
	realm string
	sname types.PrincipalName
	// tgt authenticates the request (PA-TGS-REQ).
	tgt *Ticket
	// options are KDC option bit numbers.
	options []int
	// padata follow PA-TGS-REQ, in order.
	padata     []types.PAData
	additional []messages.Ticket
	now        time.Time
	lifetime   time.Duration
	renew      time.Duration
	etypes     []int32
}

// build encodes the TGS-REQ: the body first, then the authenticator with
// the checksum over exactly the body bytes sent, then PA-TGS-REQ ahead of
// any other padata. gokrb5's NewTGSReq cannot be used: it takes options
// only from its config and computes the checksum before additional tickets
// could be added.
func (r *tgsRequest) build() (req messages.TGSReq, wire []byte, err error) {
	nonce, err := randomNonce()
	if err != nil {
		return req, nil, err
	}
	body := messages.KDCReqBody{
		KDCOptions:        types.NewKrbFlags(),
		Realm:             r.realm,
		SName:             r.sname,
		Till:              r.now.Add(r.lifetime).UTC().Truncate(time.Second),
		Nonce:             nonce,
		EType:             r.etypes,
		AdditionalTickets: r.additional,
	}
	for _, o := range r.options {
		types.SetFlag(&body.KDCOptions, o)
	}
	if r.renew > 0 {
		body.RTime = r.now.Add(r.renew).UTC().Truncate(time.Second)
	}
	bodyDER, err := body.Marshal()
	if err != nil {
		return req, nil, fmt.Errorf("marshal TGS-REQ body: %w", err)
	}
	apReq, err := authenticatorAPReq(r.tgt, bodyDER, r.now)
	if err != nil {
		return req, nil, err
	}
	req = messages.TGSReq{KDCReqFields: messages.KDCReqFields{
		PVNO:    iana.PVNO,
		MsgType: msgtype.KRB_TGS_REQ,
		PAData:  append(types.PADataSequence{{PADataType: patype.PA_TGS_REQ, PADataValue: apReq}}, r.padata...),
		ReqBody: body,
	}}
	wire, err = req.Marshal()
	if err != nil {
		return req, nil, fmt.Errorf("marshal TGS-REQ: %w", err)
	}
	return req, wire, nil
}

// authenticatorAPReq returns the PA-TGS-REQ AP-REQ: the TGT and an
// authenticator whose checksum covers the request body, always set (a KDC
// may refuse S4U without it), keyed with the TGT session key.
func authenticatorAPReq(tgt *Ticket, bodyDER []byte, now time.Time) ([]byte, error) {
	et, err := crypto.GetEtype(tgt.SessionKey.KeyType)
	if err != nil {
		return nil, fmt.Errorf("TGT session key: %w", err)
	}
	sum, err := et.GetChecksumHash(tgt.SessionKey.KeyValue, bodyDER, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM)
	if err != nil {
		return nil, fmt.Errorf("TGS-REQ body checksum: %w", err)
	}
	now = now.UTC()
	auth := types.Authenticator{
		AVNO:   iana.PVNO,
		CRealm: tgt.CRealm,
		CName:  tgt.CName,
		Cksum:  types.Checksum{CksumType: et.GetHashID(), Checksum: sum},
		Cusec:  now.Nanosecond() / 1000,
		CTime:  now.Truncate(time.Second),
	}
	b, err := apReq(tgt, auth, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR)
	if err != nil {
		return nil, fmt.Errorf("PA-TGS-REQ: %w", err)
	}
	return b, nil
}

// apReq encodes an AP-REQ carrying tgt with auth encrypted in its session
// key under usage (PA-TGS-REQ, FAST armor).
func apReq(tgt *Ticket, auth types.Authenticator, usage uint32) ([]byte, error) {
	ab, err := auth.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal authenticator: %w", err)
	}
	ed, err := crypto.GetEncryptedData(ab, tgt.SessionKey, usage, 0)
	if err != nil {
		return nil, fmt.Errorf("encrypt authenticator: %w", err)
	}
	ap := messages.APReq{
		PVNO:                   iana.PVNO,
		MsgType:                msgtype.KRB_AP_REQ,
		APOptions:              types.NewKrbFlags(),
		Ticket:                 tgt.Ticket,
		EncryptedAuthenticator: ed,
	}
	b, err := ap.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal AP-REQ: %w", err)
	}
	return b, nil
}

// randomNonce returns a non-negative 31-bit nonce.
func randomNonce() (int, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("nonce: %w", err)
	}
	return int(binary.BigEndian.Uint32(b[:]) & 0x7fffffff), nil
}
