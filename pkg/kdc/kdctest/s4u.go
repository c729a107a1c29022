package kdctest

import (
	"encoding/binary"
	"strings"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// The S4U2Self and S4U2Proxy legs of the fake KDC (MS-SFU 3.2.5).

func (k *KDC) isService(n types.PrincipalName) bool {
	s := strings.Join(n.NameString, "/")
	return strings.EqualFold(s, k.cfg.Service) || containsFold(k.cfg.ServiceSPNs, s)
}

// lookupUser resolves a PA-FOR-USER name to an account name of this realm.
func (k *KDC) lookupUser(n types.PrincipalName) (string, bool) {
	if len(n.NameString) != 1 {
		return "", false
	}
	s := n.NameString[0]
	if n.NameType == 10 {
		for upn, acct := range k.cfg.UPNs {
			if strings.EqualFold(upn, s) {
				return acct, true
			}
		}
		if i := strings.LastIndexByte(s, '@'); i > 0 && strings.EqualFold(s[i+1:], k.cfg.Realm) {
			s = s[:i]
		} else {
			return "", false
		}
	}
	for _, u := range k.cfg.Users {
		if strings.EqualFold(u, s) {
			return u, true
		}
	}
	return "", false
}

func (k *KDC) s4u2self(req *messages.TGSReq, tgt *tgtInfo, pa *types.PAData, rec *Request) (ticketSpec, error) {
	var fu paForUserMsg
	if _, err := asn1.Unmarshal(pa.PADataValue, &fu); err != nil {
		return ticketSpec{}, fail(errorcode.KRB_ERR_GENERIC, "bad PA-FOR-USER")
	}
	rec.ForUserName, rec.ForUserRealm, rec.ForUserCksumType = fu.UserName, fu.UserRealm, fu.Cksum.CksumType
	tk := tgt.ticket.DecryptedEncPart
	et, err := crypto.GetEtype(tk.Key.KeyType)
	if err != nil {
		return ticketSpec{}, fail(errorcode.KDC_ERR_ETYPE_NOSUPP, "session key")
	}
	if fu.Cksum.CksumType != et.GetHashID() && !k.cfg.LenientChecksumType {
		return ticketSpec{}, fail(errorcode.KRB_AP_ERR_MODIFIED, "PA-FOR-USER checksum type does not match the session key")
	}
	cet, err := crypto.GetChksumEtype(fu.Cksum.CksumType)
	if err != nil {
		return ticketSpec{}, fail(errorcode.KDC_ERR_SUMTYPE_NOSUPP, "checksum type")
	}
	data := make([]byte, 4)
	binary.LittleEndian.PutUint32(data, uint32(fu.UserName.NameType))
	for _, s := range fu.UserName.NameString {
		data = append(data, s...)
	}
	data = append(append(data, fu.UserRealm...), fu.AuthPackage...)
	if !cet.VerifyChecksum(tk.Key.KeyValue, data, fu.Cksum.Checksum, usageForUser) {
		return ticketSpec{}, fail(errorcode.KRB_AP_ERR_MODIFIED, "PA-FOR-USER checksum")
	}
	userRealm := strings.ToUpper(fu.UserRealm)
	local := strings.EqualFold(userRealm, k.cfg.Realm)
	crossService := local && !strings.EqualFold(tk.CRealm, k.cfg.Realm)
	if !crossService && !k.isService(req.ReqBody.SName) {
		if _, ok := k.cfg.Targets[strings.Join(req.ReqBody.SName.NameString, "/")]; ok {
			return ticketSpec{}, fail(errorcode.KRB_AP_ERR_BADMATCH, "S4U2Self must name the requesting service")
		}
		return ticketSpec{}, fail(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "server not found")
	}
	svcKey, err := k.serviceKey(etypeID.AES256_CTS_HMAC_SHA1_96)
	if err != nil {
		return ticketSpec{}, err
	}
	_, wrong := k.injected(KindS4U2Self)
	switch {
	case local && strings.EqualFold(tk.CRealm, k.cfg.Realm):
		// The service is in this realm and so is the user.
	case local:
		// The service is in another realm (cross-realm TGT): answer with a
		// referral TGT to the service's realm naming the service as client
		// and carrying the user (MS-SFU 3.2.5.1.1).
		acct, ok := k.lookupUser(fu.UserName)
		if !ok {
			return ticketSpec{}, fail(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "client not found")
		}
		key, ok := k.interRealmKey(k.cfg.Realm, tk.CRealm)
		if !ok {
			return ticketSpec{}, fail(errorcode.KDC_ERR_POLICY, "no trust")
		}
		f := types.NewKrbFlags()
		types.SetFlags(&f, []int{flags.Forwardable, flags.Renewable})
		return ticketSpec{
			cname: tk.CName, crealm: tk.CRealm,
			sname:  types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", strings.ToUpper(tk.CRealm)}},
			srealm: k.cfg.Realm, flags: f, key: key,
			ad: types.AuthorizationData{{ADType: adReferralClient, ADData: []byte(acct + "@" + k.cfg.Realm)}},
		}, nil
	default:
		// A referral TGT from the user's realm must carry that user.
		if !tgt.foreign || !strings.EqualFold(tgt.ticket.Realm, userRealm) {
			return ticketSpec{}, fail(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "client not found")
		}
		if len(tk.AuthorizationData) != 1 || tk.AuthorizationData[0].ADType != adReferralClient {
			return ticketSpec{}, fail(errorcode.KDC_ERR_BADOPTION, "referral TGT without user")
		}
		f := types.NewKrbFlags()
		types.SetFlags(&f, []int{flags.Forwardable, flags.Renewable})
		cname := fu.UserName
		if wrong {
			cname = tk.CName
		}
		return ticketSpec{cname: cname, crealm: userRealm, sname: req.ReqBody.SName, srealm: k.cfg.Realm, flags: f, key: svcKey}, nil
	}
	acct, ok := k.lookupUser(fu.UserName)
	if !ok {
		return ticketSpec{}, fail(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, "client not found")
	}
	f := types.NewKrbFlags()
	types.SetFlag(&f, flags.Renewable)
	if types.IsFlagSet(&tk.Flags, flags.Forwardable) && !containsFold(k.cfg.Sensitive, acct) &&
		!k.cfg.NoProtocolTransition && types.IsFlagSet(&req.ReqBody.KDCOptions, flags.Forwardable) {
		types.SetFlag(&f, flags.Forwardable)
	}
	cname, crealm := fu.UserName, userRealm
	if k.cfg.CanonicalizeEnterprise {
		cname = types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{acct}}
	}
	if wrong {
		cname, crealm = tk.CName, tk.CRealm
	}
	return ticketSpec{cname: cname, crealm: crealm, sname: req.ReqBody.SName, srealm: k.cfg.Realm, flags: f, key: svcKey}, nil
}

func (k *KDC) s4u2proxy(req *messages.TGSReq, tgt *tgtInfo) (ticketSpec, error) {
	tk := tgt.ticket.DecryptedEncPart
	if len(req.ReqBody.AdditionalTickets) != 1 {
		return ticketSpec{}, fail(errorcode.KDC_ERR_BADOPTION, "cname-in-addl-tkt without one additional ticket")
	}
	ev := req.ReqBody.AdditionalTickets[0]
	if !k.isService(ev.SName) || !strings.EqualFold(ev.Realm, k.cfg.Realm) {
		return ticketSpec{}, fail(errorcode.KDC_ERR_BADOPTION, "evidence ticket is not for the service")
	}
	svcKey, err := k.serviceKey(etypeID.AES256_CTS_HMAC_SHA1_96)
	if err != nil {
		return ticketSpec{}, err
	}
	if err := ev.Decrypt(svcKey); err != nil {
		return ticketSpec{}, fail(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "evidence ticket")
	}
	if len(tk.CName.NameString) != 1 || !strings.EqualFold(tk.CName.NameString[0], k.cfg.Service) {
		return ticketSpec{}, fail(errorcode.KDC_ERR_BADOPTION, "TGT is not the service's")
	}
	if !types.IsFlagSet(&ev.DecryptedEncPart.Flags, flags.Forwardable) {
		return ticketSpec{}, fail(errorcode.KDC_ERR_BADOPTION, "evidence ticket not forwardable")
	}
	target := strings.Join(req.ReqBody.SName.NameString, "/")
	pw, known := k.cfg.Targets[target]
	sname := req.ReqBody.SName
	if other, ok := k.cfg.ProxyAnswers[target]; ok {
		pw, known = k.cfg.Targets[other]
		sname = types.PrincipalName{NameType: sname.NameType, NameString: strings.Split(other, "/")}
	}
	if !containsFold(k.cfg.DelegateTo, target) && !containsFold(k.cfg.RBCDTargets, target) {
		if !known {
			return ticketSpec{}, fail(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "server not found")
		}
		return ticketSpec{}, fail(errorcode.KDC_ERR_BADOPTION, "not allowed to delegate to %s", target)
	}
	if !known {
		return ticketSpec{}, fail(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "server not found")
	}
	key, err := k.derive(pw, k.cfg.Realm, sname.NameString, etypeID.AES256_CTS_HMAC_SHA1_96)
	if err != nil {
		return ticketSpec{}, err
	}
	f := types.NewKrbFlags()
	types.SetFlags(&f, []int{flags.Forwardable, flags.Renewable})
	cname, crealm := ev.DecryptedEncPart.CName, ev.DecryptedEncPart.CRealm
	if _, wrong := k.injected(KindS4U2Proxy); wrong {
		cname, crealm = tk.CName, tk.CRealm
	}
	return ticketSpec{cname: cname, crealm: crealm, sname: sname, srealm: k.cfg.Realm, flags: f, key: key}, nil
}
