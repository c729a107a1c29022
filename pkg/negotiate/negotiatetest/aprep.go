package negotiatetest

import (
	"encoding/base64"
	"fmt"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// krb5OID is the Kerberos GSS mechanism, 1.2.840.113554.1.2.2.
var krb5OID = asn1.ObjectIdentifier{1, 2, 840, 113554, 1, 2, 2}

// MutualReply returns the "WWW-Authenticate" value an acceptor sends for
// mutual authentication: "Negotiate " and a SPNEGO NegTokenResp
// (accept-completed) carrying an AP-REP whose encrypted part, under key
// (the ticket's session key, key usage 12), echoes ctime and cusec of the
// authenticator it answers. gokrb5 decodes AP-REPs but does not make them.
func MutualReply(key types.EncryptionKey, ctime time.Time, cusec int) (string, error) {
	enc, err := asn1.Marshal(struct {
		CTime time.Time `asn1:"generalized,explicit,tag:0"`
		Cusec int       `asn1:"explicit,tag:1"`
	}{ctime.UTC().Truncate(time.Second), cusec})
	if err != nil {
		return "", fmt.Errorf("negotiatetest: EncAPRepPart: %w", err)
	}
	enc = asn1tools.AddASNAppTag(enc, asnAppTag.EncAPRepPart)
	ed, err := crypto.GetEncryptedData(enc, key, keyusage.AP_REP_ENCPART, 0)
	if err != nil {
		return "", fmt.Errorf("negotiatetest: encrypt AP-REP: %w", err)
	}
	return ReplyWithEncPart(ed)
}

// ReplyWithEncPart is the "Negotiate <token>" value of an AP-REP whose
// encrypted part is ed as given, in a SPNEGO NegTokenResp: a malformed or
// short ed is what a hostile server would send.
func ReplyWithEncPart(ed types.EncryptedData) (string, error) {
	rep, err := asn1.Marshal(struct {
		PVNO    int                 `asn1:"explicit,tag:0"`
		MsgType int                 `asn1:"explicit,tag:1"`
		EncPart types.EncryptedData `asn1:"explicit,tag:2"`
	}{5, 15, ed})
	if err != nil {
		return "", fmt.Errorf("negotiatetest: AP-REP: %w", err)
	}
	rep = asn1tools.AddASNAppTag(rep, asnAppTag.APREP)
	oid, err := asn1.Marshal(krb5OID)
	if err != nil {
		return "", err
	}
	inner := append(append(oid, 0x02, 0x00), rep...)
	k5, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassApplication, Tag: 0, IsCompound: true, Bytes: inner})
	if err != nil {
		return "", err
	}
	resp := spnego.NegTokenResp{NegState: 0, SupportedMech: krb5OID, ResponseToken: k5}
	b, err := resp.Marshal()
	if err != nil {
		return "", fmt.Errorf("negotiatetest: NegTokenResp: %w", err)
	}
	return "Negotiate " + base64.StdEncoding.EncodeToString(b), nil
}
