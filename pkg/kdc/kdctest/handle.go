package kdctest

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/krbcrypt"
)

// Wire constants of MS-SFU/MS-KILE (kept here so the fake does not depend
// on the package it tests).
const (
	paForUser        int32 = 129
	paPACOptions     int32 = 167
	optCNameInAddl         = 14
	usageForUser           = 17
	adReferralClient int32 = -1000 // private: the user a referral TGT carries
)

type krbErr struct {
	code  int32
	text  string
	edata []byte   // e-data to send, if any
	fast  *fastCtx // the armoured request the error answers
}

func (e *krbErr) Error() string { return e.text }

func fail(code int32, format string, a ...any) error {
	return &krbErr{code: code, text: fmt.Sprintf(format, a...)}
}

// Handle answers one request (without the TCP length prefix).
func (k *KDC) Handle(req []byte) []byte {
	var rep []byte
	var err error
	switch kdc.MessageType(req) {
	case msgtype.KRB_AS_REQ:
		rep, err = k.handleAS(req)
	case msgtype.KRB_TGS_REQ:
		rep, err = k.handleTGS(req)
	default:
		err = fail(errorcode.KRB_AP_ERR_MSG_TYPE, "unexpected message")
	}
	if err == nil {
		return rep
	}
	var ke *krbErr
	if !errors.As(err, &ke) {
		ke = &krbErr{code: errorcode.KRB_ERR_GENERIC, text: err.Error()}
	}
	m := messages.NewKRBError(types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", k.cfg.Realm}},
		k.cfg.Realm, ke.code, ke.text)
	now := k.cfg.Now().UTC()
	m.STime, m.Susec = now.Truncate(time.Second), now.Nanosecond()/1000
	if ke.code == errorcode.KDC_ERR_PREAUTH_REQUIRED {
		m.EData = k.preauthEData()
	}
	if ke.edata != nil {
		m.EData = ke.edata
	}
	if ke.fast != nil {
		var werr error
		if m, werr = ke.fast.wrapError(m); werr != nil {
			return nil
		}
	}
	b, merr := m.Marshal()
	if merr != nil {
		return nil
	}
	return b
}

func (k *KDC) preauthEData() []byte { return k.preauthEDataFor(k.cfg.Service) }

// preauthEDataFor is the METHOD-DATA of PREAUTH_REQUIRED for a client: its
// salt.
func (k *KDC) preauthEDataFor(client string) []byte {
	info, _ := asn1.Marshal(types.ETypeInfo2{{EType: etypeID.AES256_CTS_HMAC_SHA1_96, Salt: k.cfg.Realm + client}})
	b, _ := asn1.Marshal(types.PADataSequence{
		{PADataType: patype.PA_ETYPE_INFO2, PADataValue: info},
		{PADataType: patype.PA_ENC_TIMESTAMP, PADataValue: []byte{}},
	})
	return b
}

func (k *KDC) handleAS(raw []byte) ([]byte, error) {
	var req messages.ASReq
	if err := req.Unmarshal(raw); err != nil {
		return nil, fail(errorcode.KRB_ERR_GENERIC, "bad AS-REQ")
	}
	var rr rawTGSReq
	if _, err := asn1.UnmarshalWithParams(raw, &rr, fmt.Sprintf("application,explicit,tag:%d", asnAppTag.ASREQ)); err != nil {
		return nil, fail(errorcode.KRB_ERR_GENERIC, "bad AS-REQ")
	}
	rec := Request{Kind: KindAS, Raw: raw, KDCOptions: req.ReqBody.KDCOptions, Realm: req.ReqBody.Realm, SName: req.ReqBody.SName}
	for _, pa := range req.PAData {
		rec.PATypes = append(rec.PATypes, pa.PADataType)
	}
	fx, err := k.unwrapFAST(&req, rr.ReqBody.Bytes)
	var rep []byte
	if err == nil {
		if fx != nil {
			rec.ArmorClient = fx.armorClient
			rec.PATypes = nil
			for _, pa := range req.PAData {
				rec.PATypes = append(rec.PATypes, pa.PADataType)
			}
		}
		rep, err = k.as(&req, fx)
	}
	var ke *krbErr
	if errors.As(err, &ke) {
		rec.Code = ke.code
		ke.fast = fx
	}
	k.record(rec)
	return rep, err
}

func (k *KDC) as(req *messages.ASReq, fx *fastCtx) ([]byte, error) {
	if code, _ := k.injected(KindAS); code != 0 {
		return nil, fail(code, "injected")
	}
	client, password, ok := k.asClient(req.ReqBody.CName)
	if !ok {
		return nil, fail(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "client not found")
	}
	if k.cfg.RequireArmor && client == k.cfg.Service && (fx == nil || !strings.EqualFold(fx.armorClient, k.cfg.ArmorAccount)) {
		return nil, &krbErr{code: errorcode.KDC_ERR_POLICY, text: "not armoured by the armor account", edata: kerbExtError(statusInvalidWorkstation)}
	}
	want := patype.PA_ENC_TIMESTAMP
	if fx != nil {
		want = patype.PA_ENCRYPTED_CHALLENGE
	}
	var ts *types.PAData
	for i := range req.PAData {
		if req.PAData[i].PADataType == want {
			ts = &req.PAData[i]
		}
	}
	if ts == nil {
		return nil, &krbErr{code: errorcode.KDC_ERR_PREAUTH_REQUIRED, text: "pre-authentication required", edata: k.preauthEDataFor(client)}
	}
	var ed types.EncryptedData
	if err := ed.Unmarshal(ts.PADataValue); err != nil {
		return nil, fail(errorcode.KDC_ERR_PREAUTH_FAILED, "bad timestamp")
	}
	ckey, err := k.derive(password, k.cfg.Realm, []string{client}, ed.EType)
	if err != nil {
		return nil, fail(errorcode.KDC_ERR_ETYPE_NOSUPP, "etype")
	}
	var tsEnc types.PAEncTSEnc
	if fx != nil {
		if tsEnc, err = fx.encryptedChallenge(ts, ckey); err != nil {
			return nil, err
		}
	} else {
		pt, err := krbcrypt.DecryptEncPart(ed, ckey, keyusage.AS_REQ_PA_ENC_TIMESTAMP)
		if err != nil {
			return nil, fail(errorcode.KDC_ERR_PREAUTH_FAILED, "pre-authentication failed")
		}
		if err := tsEnc.Unmarshal(pt); err != nil {
			return nil, fail(errorcode.KDC_ERR_PREAUTH_FAILED, "bad timestamp")
		}
	}
	now := k.cfg.Now().UTC()
	if d := now.Sub(tsEnc.PATimestamp); d > 5*time.Minute || d < -5*time.Minute {
		return nil, fail(errorcode.KRB_AP_ERR_SKEW, "clock skew")
	}
	f := types.NewKrbFlags()
	types.SetFlags(&f, []int{flags.Initial, flags.PreAuthent, flags.Renewable})
	if types.IsFlagSet(&req.ReqBody.KDCOptions, flags.Forwardable) && !k.cfg.NonForwardableTGT {
		types.SetFlag(&f, flags.Forwardable)
	}
	cname := types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{client}}
	sname := types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", k.cfg.Realm}}
	tkt, skey, enc, err := k.issue(ticketSpec{
		cname: cname, crealm: k.cfg.Realm, sname: sname, srealm: k.cfg.Realm, flags: f,
		key: k.krbtgt, till: req.ReqBody.Till, rtill: req.ReqBody.RTime, now: now,
	})
	if err != nil {
		return nil, err
	}
	enc.Nonce = req.ReqBody.Nonce
	if k.cfg.EmptyReplyFlags[KindAS] {
		enc.Flags = asn1.BitString{}
	}
	_ = skey
	b, err := asn1.Marshal(enc)
	if err != nil {
		return nil, err
	}
	b = asn1tools.AddASNAppTag(b, asnAppTag.EncASRepPart)
	info, _ := asn1.Marshal(types.ETypeInfo2{{EType: ed.EType, Salt: k.cfg.Realm + client}})
	padata := []types.PAData{{PADataType: patype.PA_ETYPE_INFO2, PADataValue: info}}
	replyKey := ckey
	if fx != nil {
		pa, rk, err := k.finish(fx, ckey, tkt, k.cfg.Realm, cname, info)
		if err != nil {
			return nil, err
		}
		padata, replyKey = []types.PAData{pa}, rk
	}
	encPart, err := crypto.GetEncryptedData(b, replyKey, keyusage.AS_REP_ENCPART, 1)
	if err != nil {
		return nil, err
	}
	rep := messages.ASRep{KDCRepFields: messages.KDCRepFields{
		PVNO: iana.PVNO, MsgType: msgtype.KRB_AS_REP,
		PAData: padata,
		CRealm: k.cfg.Realm, CName: cname, Ticket: tkt, EncPart: encPart,
	}}
	return rep.Marshal()
}

type ticketSpec struct {
	cname  types.PrincipalName
	crealm string
	sname  types.PrincipalName
	srealm string
	flags  asn1.BitString
	key    types.EncryptionKey // the server's key
	till   time.Time
	rtill  time.Time // requested renew-till; zero means the maximum
	// maxEnd and maxRenew, when set, cap the end time and renew-till (the
	// TGT's: a TGS ticket never outlives the TGT it was issued with).
	maxEnd, maxRenew time.Time
	// renewed is the ticket a renewal extends: its end is now plus its old
	// lifetime, at most its renew-till, which it keeps.
	renewed *messages.EncTicketPart
	now     time.Time
	ad      types.AuthorizationData
	// sessionEtype is the session key's etype; zero means SessionEtype.
	sessionEtype int32
}

// issue makes a ticket and the matching encrypted reply part (nonce unset).
func (k *KDC) issue(s ticketSpec) (messages.Ticket, types.EncryptionKey, messages.EncKDCRepPart, error) {
	setype := k.cfg.SessionEtype
	if s.sessionEtype != 0 {
		setype = s.sessionEtype
	}
	et, err := crypto.GetEtype(setype)
	if err != nil {
		return messages.Ticket{}, types.EncryptionKey{}, messages.EncKDCRepPart{}, err
	}
	skey, err := types.GenerateEncryptionKey(et)
	if err != nil {
		return messages.Ticket{}, types.EncryptionKey{}, messages.EncKDCRepPart{}, err
	}
	now := s.now.Truncate(time.Second)
	end := now.Add(k.cfg.TicketLifetime)
	if !s.till.IsZero() && s.till.Before(end) {
		end = s.till
	}
	renew := now.Add(k.cfg.RenewLifetime)
	if !s.rtill.IsZero() && s.rtill.Before(renew) {
		renew = s.rtill
	}
	if !s.maxEnd.IsZero() && s.maxEnd.Before(end) {
		end = s.maxEnd
	}
	if !s.maxRenew.IsZero() && s.maxRenew.Before(renew) {
		renew = s.maxRenew
	}
	if r := s.renewed; r != nil {
		// RFC 4120 3.3.3: the new lifetime is the old one, up to renew-till.
		renew = r.RenewTill
		end = now.Add(r.EndTime.Sub(r.StartTime))
		if renew.Before(end) {
			end = renew
		}
	}
	if !types.IsFlagSet(&s.flags, flags.Renewable) {
		renew = time.Time{}
	}
	etp := messages.EncTicketPart{
		Flags: s.flags, Key: skey, CRealm: s.crealm, CName: s.cname,
		Transited: messages.TransitedEncoding{Contents: []byte{}},
		AuthTime:  now, StartTime: now, EndTime: end, RenewTill: renew,
		AuthorizationData: s.ad,
	}
	b, err := asn1.Marshal(etp)
	if err != nil {
		return messages.Ticket{}, types.EncryptionKey{}, messages.EncKDCRepPart{}, err
	}
	b = asn1tools.AddASNAppTag(b, asnAppTag.EncTicketPart)
	ed, err := crypto.GetEncryptedData(b, s.key, keyusage.KDC_REP_TICKET, 1)
	if err != nil {
		return messages.Ticket{}, types.EncryptionKey{}, messages.EncKDCRepPart{}, err
	}
	tkt := messages.Ticket{TktVNO: iana.PVNO, Realm: s.srealm, SName: s.sname, EncPart: ed}
	enc := messages.EncKDCRepPart{
		Key: skey, LastReqs: []messages.LastReq{{LRType: 0, LRValue: now}}, Flags: s.flags,
		AuthTime: now, StartTime: now, EndTime: end, RenewTill: renew, SRealm: s.srealm, SName: s.sname,
	}
	return tkt, skey, enc, nil
}

// rawTGSReq keeps the body bytes exactly as sent, for the checksum.
type rawTGSReq struct {
	PVNO    int                  `asn1:"explicit,tag:1"`
	MsgType int                  `asn1:"explicit,tag:2"`
	PAData  types.PADataSequence `asn1:"explicit,optional,tag:3"`
	ReqBody asn1.RawValue        `asn1:"explicit,tag:4"`
}

type paForUserMsg struct {
	UserName    types.PrincipalName `asn1:"explicit,tag:0"`
	UserRealm   string              `asn1:"generalstring,explicit,tag:1"`
	Cksum       types.Checksum      `asn1:"explicit,tag:2"`
	AuthPackage string              `asn1:"generalstring,explicit,tag:3"`
}

type pacOptionsMsg struct {
	Flags asn1.BitString `asn1:"explicit,tag:0"`
}

func (k *KDC) handleTGS(raw []byte) ([]byte, error) {
	var req messages.TGSReq
	if err := req.Unmarshal(raw); err != nil {
		return nil, fail(errorcode.KRB_ERR_GENERIC, "bad TGS-REQ")
	}
	var rr rawTGSReq
	if _, err := asn1.UnmarshalWithParams(raw, &rr, fmt.Sprintf("application,explicit,tag:%d", asnAppTag.TGSREQ)); err != nil {
		return nil, fail(errorcode.KRB_ERR_GENERIC, "bad TGS-REQ")
	}
	rec := Request{Kind: KindTGS, Raw: raw, KDCOptions: req.ReqBody.KDCOptions, Realm: req.ReqBody.Realm,
		SName: req.ReqBody.SName, AdditionalTickets: len(req.ReqBody.AdditionalTickets)}
	var forUser *types.PAData
	for i, pa := range req.PAData {
		rec.PATypes = append(rec.PATypes, pa.PADataType)
		switch pa.PADataType {
		case paForUser:
			forUser = &req.PAData[i]
		case paPACOptions:
			var po pacOptionsMsg
			if _, err := asn1.Unmarshal(pa.PADataValue, &po); err == nil {
				rec.PACOptions = po.Flags
			}
		}
	}
	switch {
	case types.IsFlagSet(&req.ReqBody.KDCOptions, flags.Renew):
		rec.Kind = KindRenew
	case forUser != nil:
		rec.Kind = KindS4U2Self
	case types.IsFlagSet(&req.ReqBody.KDCOptions, optCNameInAddl):
		rec.Kind = KindS4U2Proxy
	case len(req.ReqBody.SName.NameString) == 2 && req.ReqBody.SName.NameString[0] == "krbtgt":
		rec.Kind = KindTGT
	}
	rep, err := k.tgs(&req, rr.ReqBody.Bytes, forUser, &rec)
	var ke *krbErr
	if errors.As(err, &ke) {
		rec.Code = ke.code
	}
	k.record(rec)
	return rep, err
}

// tgt is an authenticated PA-TGS-REQ.
type tgtInfo struct {
	ticket messages.Ticket
	// foreign reports a TGT issued by another realm (a referral).
	foreign bool
	// key is the server key of a renewed ticket that is not a TGT; zero
	// for a TGT.
	key types.EncryptionKey
}

func (k *KDC) tgs(req *messages.TGSReq, body []byte, forUser *types.PAData, rec *Request) ([]byte, error) {
	if len(req.PAData) == 0 || req.PAData[0].PADataType != patype.PA_TGS_REQ {
		return nil, fail(errorcode.KRB_ERR_GENERIC, "PA-TGS-REQ must come first")
	}
	var ap messages.APReq
	if err := ap.Unmarshal(req.PAData[0].PADataValue); err != nil {
		return nil, fail(errorcode.KRB_ERR_GENERIC, "bad PA-TGS-REQ")
	}
	var tgt *tgtInfo
	var err error
	if rec.Kind == KindRenew {
		tgt, err = k.openRenewed(&ap.Ticket)
	} else {
		tgt, err = k.openTGT(&ap.Ticket)
	}
	if err != nil {
		return nil, err
	}
	tk := tgt.ticket.DecryptedEncPart
	rec.SessionKeyType = tk.Key.KeyType
	// Key usage 7 whatever the ticket (gokrb5's DecryptAuthenticator picks
	// 11 for a ticket that is not a TGT, as in an application AP-REQ).
	ab, err := krbcrypt.DecryptEncPart(ap.EncryptedAuthenticator, tk.Key, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR)
	if err != nil || ap.Authenticator.Unmarshal(ab) != nil {
		return nil, fail(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "authenticator")
	}
	rec.AuthenticatorTime = ap.Authenticator.CTime.Add(time.Duration(ap.Authenticator.Cusec) * time.Microsecond)
	if d := k.cfg.Now().Sub(rec.AuthenticatorTime); d > 5*time.Minute || d < -5*time.Minute {
		return nil, fail(errorcode.KRB_AP_ERR_SKEW, "clock skew")
	}
	if !ap.Authenticator.CName.Equal(tk.CName) || !strings.EqualFold(ap.Authenticator.CRealm, tk.CRealm) {
		return nil, fail(errorcode.KRB_AP_ERR_BADMATCH, "authenticator client")
	}
	sum := ap.Authenticator.Cksum
	rec.BodyChecksumType = sum.CksumType
	if len(sum.Checksum) == 0 {
		return nil, fail(errorcode.KRB_AP_ERR_MODIFIED, "no body checksum")
	}
	cet, err := crypto.GetChksumEtype(sum.CksumType)
	if err != nil || !cet.VerifyChecksum(tk.Key.KeyValue, body, sum.Checksum, keyusage.TGS_REQ_PA_TGS_REQ_AP_REQ_AUTHENTICATOR_CHKSUM) {
		return nil, fail(errorcode.KRB_AP_ERR_MODIFIED, "body checksum")
	}
	if code, _ := k.injected(rec.Kind); code != 0 {
		return nil, fail(code, "injected")
	}
	now := k.cfg.Now().UTC()
	var spec ticketSpec
	switch rec.Kind {
	case KindRenew:
		spec, err = k.renewal(req, tgt)
	case KindS4U2Self:
		spec, err = k.s4u2self(req, tgt, forUser, rec)
	case KindS4U2Proxy:
		spec, err = k.s4u2proxy(req, tgt)
	case KindTGT:
		spec, err = k.tgtRequest(req, tgt)
	default:
		// A plain TGS-REQ: a ticket for the TGT's own client. This is the
		// silent fallback when S4U2Proxy is sent without cname-in-addl-tkt.
		spec, err = k.plainTGS(req, tgt)
	}
	if err != nil {
		return nil, err
	}
	spec.now = now
	spec.till = req.ReqBody.Till
	if rec.Kind != KindRenew {
		spec.rtill = req.ReqBody.RTime
		spec.maxEnd, spec.maxRenew = tk.EndTime, tk.RenewTill
	}
	spec.sessionEtype = k.cfg.TGSSessionEtype
	tkt, _, enc, err := k.issue(spec)
	if err != nil {
		return nil, err
	}
	enc.Nonce = req.ReqBody.Nonce
	if k.cfg.EmptyReplyFlags[rec.Kind] {
		enc.Flags = asn1.BitString{}
	}
	b, err := asn1.Marshal(enc)
	if err != nil {
		return nil, err
	}
	b = asn1tools.AddASNAppTag(b, asnAppTag.EncTGSRepPart)
	encPart, err := crypto.GetEncryptedData(b, tk.Key, keyusage.TGS_REP_ENCPART_SESSION_KEY, 0)
	if err != nil {
		return nil, err
	}
	rep := messages.TGSRep{KDCRepFields: messages.KDCRepFields{
		PVNO: iana.PVNO, MsgType: msgtype.KRB_TGS_REP, CRealm: spec.crealm, CName: spec.cname, Ticket: tkt, EncPart: encPart,
	}}
	return rep.Marshal()
}
