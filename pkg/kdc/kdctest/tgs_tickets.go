package kdctest

import (
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

func (k *KDC) openTGT(t *messages.Ticket) (*tgtInfo, error) {
	if len(t.SName.NameString) != 2 || t.SName.NameString[0] != "krbtgt" || !strings.EqualFold(t.SName.NameString[1], k.cfg.Realm) {
		return nil, fail(errorcode.KRB_AP_ERR_NOT_US, "not a TGT for this realm")
	}
	key := k.krbtgt
	foreign := !strings.EqualFold(t.Realm, k.cfg.Realm)
	if foreign {
		var ok bool
		if key, ok = k.interRealmKey(t.Realm, k.cfg.Realm); !ok {
			return nil, fail(errorcode.KDC_ERR_POLICY, "no trust with %s", t.Realm)
		}
	}
	if err := t.Decrypt(key); err != nil {
		return nil, fail(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "TGT does not decrypt")
	}
	if k.cfg.Now().After(t.DecryptedEncPart.EndTime) {
		return nil, fail(errorcode.KRB_AP_ERR_TKT_EXPIRED, "TGT expired")
	}
	return &tgtInfo{ticket: *t, foreign: foreign}, nil
}

// openRenewed opens the ticket a renewal presents: a TGT of this realm, or
// (unless RefuseServiceRenewal) a ticket to the service account or a
// target, decrypted with that server's key.
func (k *KDC) openRenewed(t *messages.Ticket) (*tgtInfo, error) {
	if len(t.SName.NameString) == 2 && t.SName.NameString[0] == "krbtgt" {
		return k.openTGT(t)
	}
	if k.cfg.RefuseServiceRenewal {
		// Heimdal's tgs_parse_request, before it looks at any option.
		return nil, fail(errorcode.KDC_ERR_POLICY, "PA-DATA is not a ticket-granting ticket")
	}
	if !strings.EqualFold(t.Realm, k.cfg.Realm) {
		return nil, fail(errorcode.KRB_AP_ERR_NOT_US, "not a ticket of this realm")
	}
	var key types.EncryptionKey
	var err error
	if k.isService(t.SName) {
		key, err = k.serviceKey(etypeID.AES256_CTS_HMAC_SHA1_96)
	} else {
		pw, ok := k.cfg.Targets[strings.Join(t.SName.NameString, "/")]
		if !ok {
			return nil, fail(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "server not found")
		}
		key, err = k.derive(pw, k.cfg.Realm, t.SName.NameString, etypeID.AES256_CTS_HMAC_SHA1_96)
	}
	if err != nil {
		return nil, err
	}
	if err := t.Decrypt(key); err != nil {
		return nil, fail(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "ticket does not decrypt")
	}
	if k.cfg.Now().After(t.DecryptedEncPart.EndTime) {
		return nil, fail(errorcode.KRB_AP_ERR_TKT_EXPIRED, "ticket expired")
	}
	return &tgtInfo{ticket: *t, key: key}, nil
}

// renewal answers a TGS-REQ with the renew option (RFC 4120 3.3.3): the
// same client, server, flags and authorization data, a new session key,
// the old lifetime from now, the same renew-till.
func (k *KDC) renewal(req *messages.TGSReq, tgt *tgtInfo) (ticketSpec, error) {
	tk := tgt.ticket.DecryptedEncPart
	if !types.IsFlagSet(&tk.Flags, flags.Renewable) || tk.RenewTill.IsZero() {
		return ticketSpec{}, fail(errorcode.KDC_ERR_BADOPTION, "ticket is not renewable")
	}
	if !k.cfg.Now().Before(tk.RenewTill) {
		return ticketSpec{}, fail(errorcode.KRB_AP_ERR_TKT_EXPIRED, "renew-till has passed")
	}
	if !req.ReqBody.SName.Equal(tgt.ticket.SName) {
		return ticketSpec{}, fail(errorcode.KDC_ERR_BADOPTION, "renewal must name the ticket's server")
	}
	key := tgt.key
	if key.KeyValue == nil {
		key = k.krbtgt
		if tgt.foreign {
			return ticketSpec{}, fail(errorcode.KDC_ERR_POLICY, "renew a cross-realm TGT at its own realm")
		}
	}
	cname, crealm := tk.CName, tk.CRealm
	if _, wrong := k.injected(KindRenew); wrong {
		cname, crealm = types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{k.cfg.Service}}, k.cfg.Realm
	}
	return ticketSpec{cname: cname, crealm: crealm, sname: tgt.ticket.SName, srealm: tgt.ticket.Realm,
		flags: tk.Flags, key: key, renewed: &tk, ad: tk.AuthorizationData}, nil
}

func (k *KDC) tgtRequest(req *messages.TGSReq, tgt *tgtInfo) (ticketSpec, error) {
	tk := tgt.ticket.DecryptedEncPart
	to := strings.ToUpper(req.ReqBody.SName.NameString[1])
	f := types.NewKrbFlags()
	types.SetFlag(&f, flags.Renewable)
	if types.IsFlagSet(&tk.Flags, flags.Forwardable) {
		types.SetFlag(&f, flags.Forwardable)
	}
	sname := types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", to}}
	if strings.EqualFold(to, k.cfg.Realm) {
		return ticketSpec{cname: tk.CName, crealm: tk.CRealm, sname: sname, srealm: k.cfg.Realm, flags: f, key: k.krbtgt}, nil
	}
	key, ok := k.interRealmKey(k.cfg.Realm, to)
	if !ok {
		return ticketSpec{}, fail(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "no trust with %s", to)
	}
	return ticketSpec{cname: tk.CName, crealm: tk.CRealm, sname: sname, srealm: k.cfg.Realm, flags: f, key: key}, nil
}

func (k *KDC) plainTGS(req *messages.TGSReq, tgt *tgtInfo) (ticketSpec, error) {
	tk := tgt.ticket.DecryptedEncPart
	target := strings.Join(req.ReqBody.SName.NameString, "/")
	pw, ok := k.cfg.Targets[target]
	if !ok {
		return ticketSpec{}, fail(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, "server not found")
	}
	key, err := k.derive(pw, k.cfg.Realm, req.ReqBody.SName.NameString, etypeID.AES256_CTS_HMAC_SHA1_96)
	if err != nil {
		return ticketSpec{}, err
	}
	f := types.NewKrbFlags()
	types.SetFlag(&f, flags.Renewable)
	return ticketSpec{cname: tk.CName, crealm: tk.CRealm, sname: req.ReqBody.SName, srealm: k.cfg.Realm, flags: f, key: key}, nil
}
