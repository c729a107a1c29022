package s4u

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// FAST (RFC 6113) for the service account's AS exchange: the request is
// armoured with a TGT of another principal (a computer account: the
// gateway host's), as an authentication policy's AllowedToAuthenticateFrom
// demands (Samba 4.20+, Windows 2012 R2+). gokrb5 has no FAST; this is the
// client side of the AS case only: explicit AP-REQ armor (armor type 1),
// encrypted challenge (PA-ENCRYPTED-CHALLENGE) as the pre-authentication
// (Heimdal takes no PA-ENC-TIMESTAMP inside FAST), the KDC's cookie echoed,
// armoured errors unwrapped, and the reply key strengthened.

// Key usages of RFC 6113 section 5.4.6 that gokrb5 does not name.
const (
	keyUsageEncChallengeClient = 54
	keyUsageEncChallengeKDC    = 55
	// armorTypeAPRequest is FX_FAST_ARMOR_AP_REQUEST.
	armorTypeAPRequest = 1
)

// krbFastArmor is KrbFastArmor.
type krbFastArmor struct {
	ArmorType  int32  `asn1:"explicit,tag:0"`
	ArmorValue []byte `asn1:"explicit,tag:1"`
}

// krbFastArmoredReq is KrbFastArmoredReq; PA-FX-FAST-REQUEST is it under
// [0] (armored-data).
type krbFastArmoredReq struct {
	Armor       krbFastArmor        `asn1:"explicit,optional,tag:0"`
	ReqChecksum types.Checksum      `asn1:"explicit,tag:1"`
	EncFastReq  types.EncryptedData `asn1:"explicit,tag:2"`
}

// krbFastArmoredRep is KrbFastArmoredRep; PA-FX-FAST-REPLY is it under [0].
type krbFastArmoredRep struct {
	EncFastRep types.EncryptedData `asn1:"explicit,tag:0"`
}

// krbFastResponse is KrbFastResponse, the decrypted enc-fast-rep.
type krbFastResponse struct {
	PAData        types.PADataSequence `asn1:"explicit,tag:0"`
	StrengthenKey types.EncryptionKey  `asn1:"explicit,optional,tag:1"`
	Finished      krbFastFinished      `asn1:"explicit,optional,tag:2"`
	Nonce         int64                `asn1:"explicit,tag:3"`
}

// krbFastFinished is KrbFastFinished: what the KDC binds to the ticket.
type krbFastFinished struct {
	Timestamp      time.Time           `asn1:"generalized,explicit,tag:0"`
	Usec           int                 `asn1:"explicit,tag:1"`
	CRealm         string              `asn1:"generalstring,explicit,tag:2"`
	CName          types.PrincipalName `asn1:"explicit,tag:3"`
	TicketChecksum types.Checksum      `asn1:"explicit,tag:4"`
}

// fastArmor is one AS exchange's armour: the AP-REQ carrying the armor TGT
// with a fresh subkey, and the armor key both ends derive from them.
type fastArmor struct {
	apReq  []byte
	key    types.EncryptionKey
	cookie []byte // PA-FX-COOKIE from the KDC's last armoured error
}

// newFASTArmor builds the armour from an armor TGT: an AP-REQ whose
// authenticator carries a random subkey of the TGT session key's etype, and
// the armor key KRB-FX-CF2(subkey, TGT session key, "subkeyarmor",
// "ticketarmor") (RFC 6113 section 5.4.1.1).
func newFASTArmor(tgt *Ticket, now time.Time) (*fastArmor, error) {
	et, err := crypto.GetEtype(tgt.SessionKey.KeyType)
	if err != nil {
		return nil, fmt.Errorf("armor TGT session key: %w", err)
	}
	sub, err := types.GenerateEncryptionKey(et)
	if err != nil {
		return nil, fmt.Errorf("armor subkey: %w", err)
	}
	now = now.UTC()
	auth := types.Authenticator{
		AVNO:   iana.PVNO,
		CRealm: tgt.CRealm,
		CName:  tgt.CName,
		Cusec:  now.Nanosecond() / 1000,
		CTime:  now.Truncate(time.Second),
		SubKey: sub,
	}
	ab, err := auth.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal armor authenticator: %w", err)
	}
	ed, err := crypto.GetEncryptedData(ab, tgt.SessionKey, keyusage.AP_REQ_AUTHENTICATOR, 0)
	if err != nil {
		return nil, fmt.Errorf("encrypt armor authenticator: %w", err)
	}
	ap := messages.APReq{
		PVNO: iana.PVNO, MsgType: msgtype.KRB_AP_REQ, APOptions: types.NewKrbFlags(),
		Ticket: tgt.Ticket, EncryptedAuthenticator: ed,
	}
	b, err := ap.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal armor AP-REQ: %w", err)
	}
	key, err := cf2(sub, tgt.SessionKey, "subkeyarmor", "ticketarmor")
	if err != nil {
		return nil, fmt.Errorf("armor key: %w", err)
	}
	return &fastArmor{apReq: b, key: key}, nil
}

// encryptedChallenge is PA-ENCRYPTED-CHALLENGE: PA-ENC-TS-ENC encrypted
// with KRB-FX-CF2(armor key, long-term key, "clientchallengearmor",
// "challengelongterm") (RFC 6113 section 5.4.6).
func (f *fastArmor) encryptedChallenge(lt types.EncryptionKey, now time.Time) (types.PAData, error) {
	ck, err := cf2(f.key, lt, "clientchallengearmor", "challengelongterm")
	if err != nil {
		return types.PAData{}, fmt.Errorf("challenge key: %w", err)
	}
	ts, err := asn1.Marshal(types.PAEncTSEnc{PATimestamp: now.UTC().Truncate(time.Second), PAUSec: now.Nanosecond() / 1000})
	if err != nil {
		return types.PAData{}, fmt.Errorf("marshal PA-ENC-TS-ENC: %w", err)
	}
	ed, err := crypto.GetEncryptedData(ts, ck, keyUsageEncChallengeClient, 0)
	if err != nil {
		return types.PAData{}, fmt.Errorf("encrypt challenge: %w", err)
	}
	b, err := ed.Marshal()
	if err != nil {
		return types.PAData{}, fmt.Errorf("marshal PA-ENCRYPTED-CHALLENGE: %w", err)
	}
	return types.PAData{PADataType: patype.PA_ENCRYPTED_CHALLENGE, PADataValue: b}, nil
}

// wrap armours an AS-REQ: inner padata (the pre-authentication, the
// cookie) and the body go encrypted in KrbFastReq; the outer request
// carries the same body, checksummed with the armor key, and PA-FX-FAST
// only (a KDC ignores outer padata in a FAST request).
func (f *fastArmor) wrap(req *messages.ASReq) error {
	inner := req.PAData
	if f.cookie != nil {
		inner = append(inner, types.PAData{PADataType: patype.PA_FX_COOKIE, PADataValue: f.cookie})
	}
	bodyDER, err := req.ReqBody.Marshal()
	if err != nil {
		return fmt.Errorf("marshal AS-REQ body: %w", err)
	}
	opts, err := asn1.Marshal(asn1.BitString{Bytes: make([]byte, 4), BitLength: 32})
	if err != nil {
		return fmt.Errorf("marshal fast-options: %w", err)
	}
	pa, err := asn1.Marshal(inner)
	if err != nil {
		return fmt.Errorf("marshal FAST padata: %w", err)
	}
	fastReq := derSequence(explicitTag(0, opts), explicitTag(1, pa), explicitTag(2, bodyDER))
	enc, err := crypto.GetEncryptedData(fastReq, f.key, keyusage.KEY_USAGE_FAST_ENC, 0)
	if err != nil {
		return fmt.Errorf("encrypt KrbFastReq: %w", err)
	}
	et, err := crypto.GetEtype(f.key.KeyType)
	if err != nil {
		return err
	}
	sum, err := et.GetChecksumHash(f.key.KeyValue, bodyDER, keyusage.KEY_USAGE_FAST_REQ_CHKSUM)
	if err != nil {
		return fmt.Errorf("FAST request checksum: %w", err)
	}
	armored, err := asn1.Marshal(krbFastArmoredReq{
		Armor:       krbFastArmor{ArmorType: armorTypeAPRequest, ArmorValue: f.apReq},
		ReqChecksum: types.Checksum{CksumType: et.GetHashID(), Checksum: sum},
		EncFastReq:  enc,
	})
	if err != nil {
		return fmt.Errorf("marshal KrbFastArmoredReq: %w", err)
	}
	req.PAData = types.PADataSequence{{PADataType: patype.PA_FX_FAST, PADataValue: explicitTag(0, armored)}}
	return nil
}

var errNoFASTReply = errors.New("no PA-FX-FAST in the KDC's answer to an armoured request")

// open decrypts the PA-FX-FAST of a reply's padata (or an error's e-data
// METHOD-DATA) with the armor key and checks its nonce is the request's.
// It never panics on malformed input (FuzzFASTResponse).
func (f *fastArmor) open(pas types.PADataSequence, nonce int) (*krbFastResponse, error) {
	for _, pa := range pas {
		if pa.PADataType != patype.PA_FX_FAST {
			continue
		}
		var rep krbFastArmoredRep
		rest, err := asn1.UnmarshalWithParams(pa.PADataValue, &rep, "explicit,tag:0")
		if err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("decode PA-FX-FAST-REPLY: %v (%d trailing bytes)", err, len(rest))
		}
		pt, err := crypto.DecryptEncPart(rep.EncFastRep, f.key, keyusage.KEY_USAGE_FAST_REP)
		if err != nil {
			return nil, fmt.Errorf("decrypt KrbFastResponse: %w", err)
		}
		var r krbFastResponse
		if rest, err := asn1.Unmarshal(pt, &r); err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("decode KrbFastResponse: %v (%d trailing bytes)", err, len(rest))
		}
		if r.Nonce != int64(nonce) {
			return nil, errors.New("KrbFastResponse nonce does not match the request")
		}
		return &r, nil
	}
	return nil, errNoFASTReply
}

// unwrapError returns the KRB-ERROR inside an armoured error (PA-FX-ERROR),
// with e-data set to the rest of the FAST response's padata (ETYPE-INFO2
// and the like, as METHOD-DATA), and keeps the KDC's cookie for the next
// request.
func (f *fastArmor) unwrapError(outer messages.KRBError, nonce int) (messages.KRBError, error) {
	var md types.PADataSequence
	if err := md.Unmarshal(outer.EData); err != nil {
		return outer, errNoFASTReply
	}
	r, err := f.open(md, nonce)
	if err != nil {
		return outer, err
	}
	var inner *messages.KRBError
	var rest types.PADataSequence
	for _, pa := range r.PAData {
		switch pa.PADataType {
		case patype.PA_FX_ERROR:
			var e messages.KRBError
			if err := e.Unmarshal(pa.PADataValue); err != nil {
				return outer, fmt.Errorf("decode PA-FX-ERROR: %w", err)
			}
			inner = &e
		case patype.PA_FX_COOKIE:
			f.cookie = append([]byte(nil), pa.PADataValue...)
			rest = append(rest, pa)
		default:
			rest = append(rest, pa)
		}
	}
	if inner == nil {
		return outer, errors.New("armoured KRB-ERROR without PA-FX-ERROR")
	}
	inner.EData = nil
	if len(rest) > 0 {
		b, err := asn1.Marshal(rest)
		if err != nil {
			return outer, fmt.Errorf("marshal FAST e-data: %w", err)
		}
		inner.EData = b
	}
	return *inner, nil
}

// checkFinished checks a FAST AS-REP's KrbFastFinished against the reply:
// the ticket checksum under the armor key, and the client. r.PAData is then
// the FAST response's padata, the only padata the KDC vouches for.
func (f *fastArmor) checkFinished(r *kdcReply, resp *krbFastResponse) error {
	fin := resp.Finished
	if len(fin.TicketChecksum.Checksum) == 0 {
		return errors.New("FAST reply without KrbFastFinished")
	}
	et, err := crypto.GetEtype(f.key.KeyType)
	if err != nil {
		return err
	}
	want, err := et.GetChecksumHash(f.key.KeyValue, r.TicketDER, keyusage.KEY_USAGE_FAST_FINISHED)
	if err != nil {
		return fmt.Errorf("FAST ticket checksum: %w", err)
	}
	if fin.TicketChecksum.CksumType != et.GetHashID() || !hmac.Equal(want, fin.TicketChecksum.Checksum) {
		return errors.New("FAST ticket checksum does not match the ticket: the reply was altered")
	}
	if !sameNameFold(fin.CName, r.CName) || !strings.EqualFold(fin.CRealm, r.CRealm) {
		return fmt.Errorf("FAST finished names client %s, the reply %s",
			principalString(fin.CName, fin.CRealm), principalString(r.CName, r.CRealm))
	}
	r.PAData = resp.PAData
	return nil
}

// strengthen returns the AS reply key: the long-term key mixed with the
// KDC's strengthen-key, KRB-FX-CF2(strengthen-key, lt, "strengthenkey",
// "replykey") (RFC 6113 section 5.4.3); lt itself when the KDC sent none.
func strengthen(resp *krbFastResponse, lt types.EncryptionKey) (types.EncryptionKey, error) {
	if len(resp.StrengthenKey.KeyValue) == 0 {
		return lt, nil
	}
	return cf2(resp.StrengthenKey, lt, "strengthenkey", "replykey")
}

// explicitTag wraps DER in a context-specific constructed tag [tag]
// (tag < 31).
func explicitTag(tag int, der []byte) []byte { return tlv(0xa0|byte(tag), der) }

// derSequence is a SEQUENCE of already encoded fields.
func derSequence(fields ...[]byte) []byte {
	var body []byte
	for _, f := range fields {
		body = append(body, f...)
	}
	return tlv(0x30, body)
}

// tlv encodes one DER element with a one-byte tag.
func tlv(tag byte, content []byte) []byte {
	n := len(content)
	out := []byte{tag}
	switch {
	case n < 0x80:
		out = append(out, byte(n))
	case n <= 0xff:
		out = append(out, 0x81, byte(n))
	case n <= 0xffff:
		out = append(out, 0x82, byte(n>>8), byte(n))
	default:
		out = append(out, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(out, content...)
}
