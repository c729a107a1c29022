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
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/krbcrypt"
	"github.com/segmesh/segmesh/pkg/krbfast"
)

// FAST (RFC 6113) for the service account's AS exchange: the request is
// armoured with a TGT of another principal (a computer account: the
// gateway host's), as an authentication policy's AllowedToAuthenticateFrom
// demands (Samba 4.20+, Windows 2012 R2+). gokrb5 has no FAST; this is the
// client side of the AS case only (pkg/krbfast has the messages and
// KRB-FX-CF2): explicit AP-REQ armor (armor type 1), encrypted challenge
// (PA-ENCRYPTED-CHALLENGE) as the pre-authentication, as MIT's client
// does, the KDC's cookie echoed, armoured errors unwrapped, and the reply
// key strengthened.

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
	b, err := apReq(tgt, auth, keyusage.AP_REQ_AUTHENTICATOR)
	if err != nil {
		return nil, fmt.Errorf("armor: %w", err)
	}
	key, err := krbfast.CF2(sub, tgt.SessionKey, krbfast.PepperSubkeyArmor, krbfast.PepperTicketArmor)
	if err != nil {
		return nil, fmt.Errorf("armor key: %w", err)
	}
	return &fastArmor{apReq: b, key: key}, nil
}

// encryptedChallenge is PA-ENCRYPTED-CHALLENGE: PA-ENC-TS-ENC encrypted
// with KRB-FX-CF2(armor key, long-term key, "clientchallengearmor",
// "challengelongterm") (RFC 6113 section 5.4.6).
func (f *fastArmor) encryptedChallenge(lt types.EncryptionKey, now time.Time) (types.PAData, error) {
	ck, err := krbfast.CF2(f.key, lt, krbfast.PepperClientChallenge, krbfast.PepperChallengeLongTerm)
	if err != nil {
		return types.PAData{}, fmt.Errorf("challenge key: %w", err)
	}
	ts, err := asn1.Marshal(types.PAEncTSEnc{PATimestamp: now.UTC().Truncate(time.Second), PAUSec: now.Nanosecond() / 1000})
	if err != nil {
		return types.PAData{}, fmt.Errorf("marshal PA-ENC-TS-ENC: %w", err)
	}
	ed, err := crypto.GetEncryptedData(ts, ck, krbfast.KeyUsageEncChallengeClient, 0)
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
	fastReq, err := krbfast.MarshalReq(inner, bodyDER)
	if err != nil {
		return err
	}
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
	v, err := krbfast.MarshalChoice(krbfast.ArmoredReq{
		Armor:       krbfast.Armor{ArmorType: krbfast.ArmorTypeAPRequest, ArmorValue: f.apReq},
		ReqChecksum: types.Checksum{CksumType: et.GetHashID(), Checksum: sum},
		EncFastReq:  enc,
	})
	if err != nil {
		return err
	}
	req.PAData = types.PADataSequence{{PADataType: patype.PA_FX_FAST, PADataValue: v}}
	return nil
}

var errNoFASTReply = errors.New("no PA-FX-FAST in the KDC's answer to an armoured request")

// open decrypts the PA-FX-FAST of a reply's padata (or an error's e-data
// METHOD-DATA) with the armor key and checks its nonce is the request's.
// It never panics on malformed input (FuzzFASTResponse).
func (f *fastArmor) open(pas types.PADataSequence, nonce int) (*krbfast.Response, error) {
	for _, pa := range pas {
		if pa.PADataType != patype.PA_FX_FAST {
			continue
		}
		var rep krbfast.ArmoredRep
		if err := krbfast.UnmarshalChoice(pa.PADataValue, &rep); err != nil {
			return nil, err
		}
		pt, err := krbcrypt.DecryptEncPart(rep.EncFastRep, f.key, keyusage.KEY_USAGE_FAST_REP)
		if err != nil {
			return nil, fmt.Errorf("decrypt KrbFastResponse: %w", err)
		}
		return decodeFASTResponse(pt, nonce)
	}
	return nil, errNoFASTReply
}

// decodeFASTResponse decodes a decrypted KrbFastResponse and checks its
// nonce. It never panics on malformed input (FuzzFASTResponse).
func decodeFASTResponse(pt []byte, nonce int) (*krbfast.Response, error) {
	var r krbfast.Response
	if rest, err := asn1.Unmarshal(pt, &r); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("decode KrbFastResponse: %v (%d trailing bytes)", err, len(rest))
	}
	if r.Nonce != int64(nonce) {
		return nil, errors.New("KrbFastResponse nonce does not match the request")
	}
	return &r, nil
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
	return f.innerError(outer, r)
}

// innerError takes the KRB-ERROR out of an armoured error's KrbFastResponse
// (see unwrapError).
func (f *fastArmor) innerError(outer messages.KRBError, r *krbfast.Response) (messages.KRBError, error) {
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
func (f *fastArmor) checkFinished(r *kdcReply, resp *krbfast.Response) error {
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
func strengthen(resp *krbfast.Response, lt types.EncryptionKey) (types.EncryptionKey, error) {
	if len(resp.StrengthenKey.KeyValue) == 0 {
		return lt, nil
	}
	return krbfast.CF2(resp.StrengthenKey, lt, krbfast.PepperStrengthenKey, krbfast.PepperReplyKey)
}
