package kdctest

import (
	"crypto/hmac"
	"encoding/binary"
	"strings"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/krbcrypt"
	"github.com/segmesh/segmesh/pkg/krbfast"
)

// The fake's side of FAST (RFC 6113) for AS requests, as Samba's Heimdal
// answers them: explicit AP-REQ armor with a TGT of this realm, the outer
// body checksummed with the armor key, encrypted challenge as the
// pre-authentication, errors wrapped in PA-FX-FAST with PA-FX-ERROR and a
// cookie, replies with a strengthened reply key and KrbFastFinished.

// statusInvalidWorkstation is the NTSTATUS Samba sends when an
// AllowedToAuthenticateFrom condition refuses an AS exchange that is not
// armoured (recorded in the lab).
const statusInvalidWorkstation = 0xC0000070

// fastCookie is the PA-FX-COOKIE the fake sends with armoured errors.
const fastCookie = "kdctest-fast-cookie"

// fastCtx is an armoured AS request's state.
type fastCtx struct {
	key         types.EncryptionKey // the armor key
	nonce       int                 // the inner body's
	armorClient string
}

// kerbExtError is the e-data AD KDCs send with an NTSTATUS
// (KERB-ERROR-DATA of type KERB_ERR_TYPE_EXTENDED, MS-KILE 2.2.1-2).
func kerbExtError(status uint32) []byte {
	v := make([]byte, 12)
	binary.LittleEndian.PutUint32(v, status)
	v[8] = 1
	b, _ := asn1.Marshal(struct {
		DataType  int32  `asn1:"explicit,tag:1"`
		DataValue []byte `asn1:"explicit,tag:2"`
	}{3, v})
	return b
}

// unwrapFAST opens an AS-REQ's PA-FX-FAST: the armor AP-REQ (a TGT of this
// realm, an authenticator with a subkey), the checksum over the outer body,
// and KrbFastReq, whose padata and body replace the outer ones. nil when
// the request is not armoured.
func (k *KDC) unwrapFAST(req *messages.ASReq, outerBody []byte) (*fastCtx, error) {
	var pa *types.PAData
	for i := range req.PAData {
		if req.PAData[i].PADataType == patype.PA_FX_FAST {
			pa = &req.PAData[i]
		}
	}
	if pa == nil {
		return nil, nil
	}
	var ar krbfast.ArmoredReq
	if err := krbfast.UnmarshalChoice(pa.PADataValue, &ar); err != nil || ar.Armor.ArmorType != krbfast.ArmorTypeAPRequest {
		return nil, fail(errorcode.KDC_ERR_PREAUTH_FAILED, "bad PA-FX-FAST")
	}
	var ap messages.APReq
	if err := ap.Unmarshal(ar.Armor.ArmorValue); err != nil {
		return nil, fail(errorcode.KDC_ERR_PREAUTH_FAILED, "bad armor AP-REQ")
	}
	tgt, err := k.openTGT(&ap.Ticket)
	if err != nil || tgt.foreign {
		return nil, fail(errorcode.KDC_ERR_PREAUTH_FAILED, "armor ticket is no TGT of this realm")
	}
	pt, err := krbcrypt.DecryptEncPart(ap.EncryptedAuthenticator, tgt.ticket.DecryptedEncPart.Key, keyusage.AP_REQ_AUTHENTICATOR)
	if err != nil {
		return nil, fail(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "armor authenticator does not decrypt")
	}
	var auth types.Authenticator
	if err := auth.Unmarshal(pt); err != nil || len(auth.SubKey.KeyValue) == 0 {
		return nil, fail(errorcode.KDC_ERR_PREAUTH_FAILED, "FAST AP-REQ remote subkey missing")
	}
	key, err := krbfast.CF2(auth.SubKey, tgt.ticket.DecryptedEncPart.Key, krbfast.PepperSubkeyArmor, krbfast.PepperTicketArmor)
	if err != nil {
		return nil, fail(errorcode.KDC_ERR_PREAUTH_FAILED, "armor key: %v", err)
	}
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return nil, err
	}
	sum, err := et.GetChecksumHash(key.KeyValue, outerBody, keyusage.KEY_USAGE_FAST_REQ_CHKSUM)
	if err != nil || ar.ReqChecksum.CksumType != et.GetHashID() || !hmac.Equal(sum, ar.ReqChecksum.Checksum) {
		return nil, fail(errorcode.KRB_AP_ERR_MODIFIED, "bad checksum in FAST AS request")
	}
	pt, err = krbcrypt.DecryptEncPart(ar.EncFastReq, key, keyusage.KEY_USAGE_FAST_ENC)
	if err != nil {
		return nil, fail(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "KrbFastReq does not decrypt")
	}
	var fr krbfast.Req
	if _, err := asn1.Unmarshal(pt, &fr); err != nil {
		return nil, fail(errorcode.KDC_ERR_PREAUTH_FAILED, "bad KrbFastReq")
	}
	var body messages.KDCReqBody
	if err := body.Unmarshal(fr.ReqBody.Bytes); err != nil {
		return nil, fail(errorcode.KDC_ERR_PREAUTH_FAILED, "bad KrbFastReq body")
	}
	req.PAData, req.ReqBody = fr.PAData, body
	return &fastCtx{key: key, nonce: body.Nonce, armorClient: strings.Join(tgt.ticket.DecryptedEncPart.CName.NameString, "/")}, nil
}

// encryptedChallenge checks PA-ENCRYPTED-CHALLENGE with the client's key
// and returns the timestamp inside.
func (f *fastCtx) encryptedChallenge(pa *types.PAData, ckey types.EncryptionKey) (types.PAEncTSEnc, error) {
	var ts types.PAEncTSEnc
	var ed types.EncryptedData
	if err := ed.Unmarshal(pa.PADataValue); err != nil {
		return ts, fail(errorcode.KDC_ERR_PREAUTH_FAILED, "bad encrypted challenge")
	}
	chk, err := krbfast.CF2(f.key, ckey, krbfast.PepperClientChallenge, krbfast.PepperChallengeLongTerm)
	if err != nil {
		return ts, fail(errorcode.KDC_ERR_PREAUTH_FAILED, "challenge key: %v", err)
	}
	pt, err := krbcrypt.DecryptEncPart(ed, chk, krbfast.KeyUsageEncChallengeClient)
	if err != nil {
		return ts, fail(errorcode.KDC_ERR_PREAUTH_FAILED, "pre-authentication failed")
	}
	if err := ts.Unmarshal(pt); err != nil {
		return ts, fail(errorcode.KDC_ERR_PREAUTH_FAILED, "bad timestamp")
	}
	return ts, nil
}

// response encrypts a KrbFastResponse as a PA-FX-FAST padata.
func (f *fastCtx) response(r krbfast.Response) (types.PAData, error) {
	r.Nonce = int64(f.nonce)
	b, err := asn1.Marshal(r)
	if err != nil {
		return types.PAData{}, err
	}
	enc, err := crypto.GetEncryptedData(b, f.key, keyusage.KEY_USAGE_FAST_REP, 0)
	if err != nil {
		return types.PAData{}, err
	}
	v, err := krbfast.MarshalChoice(krbfast.ArmoredRep{EncFastRep: enc})
	if err != nil {
		return types.PAData{}, err
	}
	return types.PAData{PADataType: patype.PA_FX_FAST, PADataValue: v}, nil
}

// wrapError puts a KRB-ERROR inside FAST: the error itself as PA-FX-ERROR,
// its METHOD-DATA and a cookie in the armoured response, which becomes the
// outer error's only e-data.
func (f *fastCtx) wrapError(m messages.KRBError) (messages.KRBError, error) {
	var pas types.PADataSequence
	if len(m.EData) > 0 {
		if err := pas.Unmarshal(m.EData); err != nil {
			pas = nil
		}
	}
	inner := m
	inner.EData = nil
	der, err := inner.Marshal()
	if err != nil {
		return m, err
	}
	pas = append(types.PADataSequence{{PADataType: patype.PA_FX_ERROR, PADataValue: der}}, pas...)
	pas = append(pas, types.PAData{PADataType: patype.PA_FX_COOKIE, PADataValue: []byte(fastCookie)})
	fx, err := f.response(krbfast.Response{PAData: pas})
	if err != nil {
		return m, err
	}
	md, err := asn1.Marshal(types.PADataSequence{fx})
	if err != nil {
		return m, err
	}
	m.EData, m.EText = md, ""
	return m, nil
}

// finish makes an armoured AS-REP's PA-FX-FAST and reply key: a random
// strengthen-key mixed into the client's key, and KrbFastFinished binding
// the ticket (its checksum wrong with BadFASTFinished).
func (k *KDC) finish(f *fastCtx, ckey types.EncryptionKey, tkt messages.Ticket, crealm string, cname types.PrincipalName, etypeInfo []byte) (types.PAData, types.EncryptionKey, error) {
	cet, err := crypto.GetEtype(ckey.KeyType)
	if err != nil {
		return types.PAData{}, ckey, err
	}
	sk, err := types.GenerateEncryptionKey(cet)
	if err != nil {
		return types.PAData{}, ckey, err
	}
	reply, err := krbfast.CF2(sk, ckey, krbfast.PepperStrengthenKey, krbfast.PepperReplyKey)
	if err != nil {
		return types.PAData{}, ckey, err
	}
	der, err := tkt.Marshal()
	if err != nil {
		return types.PAData{}, ckey, err
	}
	et, err := crypto.GetEtype(f.key.KeyType)
	if err != nil {
		return types.PAData{}, ckey, err
	}
	sum, err := et.GetChecksumHash(f.key.KeyValue, der, keyusage.KEY_USAGE_FAST_FINISHED)
	if err != nil {
		return types.PAData{}, ckey, err
	}
	if k.cfg.BadFASTFinished {
		sum[0] ^= 1
	}
	now := k.cfg.Now().UTC()
	pa, err := f.response(krbfast.Response{
		PAData:        types.PADataSequence{{PADataType: patype.PA_ETYPE_INFO2, PADataValue: etypeInfo}},
		StrengthenKey: sk,
		Finished: krbfast.Finished{Timestamp: now.Truncate(time.Second), Usec: now.Nanosecond() / 1000, CRealm: crealm, CName: cname,
			TicketChecksum: types.Checksum{CksumType: et.GetHashID(), Checksum: sum}},
	})
	return pa, reply, err
}

// asClient returns the AS client the fake knows by cname: the service
// account or the armor account, with its password.
func (k *KDC) asClient(cname types.PrincipalName) (string, string, bool) {
	if len(cname.NameString) != 1 {
		return "", "", false
	}
	switch n := cname.NameString[0]; {
	case strings.EqualFold(n, k.cfg.Service):
		return k.cfg.Service, k.cfg.ServicePassword, true
	case k.cfg.ArmorAccount != "" && strings.EqualFold(n, k.cfg.ArmorAccount):
		return k.cfg.ArmorAccount, k.cfg.ArmorPassword, true
	}
	return "", "", false
}
