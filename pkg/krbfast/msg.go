package krbfast

import (
	"fmt"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Key usages of RFC 6113 section 5.4.6 that gokrb5 does not name (it names
// 50-53: KEY_USAGE_FAST_REQ_CHKSUM, _ENC, _REP, _FINISHED).
const (
	KeyUsageEncChallengeClient = 54
	KeyUsageEncChallengeKDC    = 55
	// ArmorTypeAPRequest is FX_FAST_ARMOR_AP_REQUEST.
	ArmorTypeAPRequest = 1
)

// Peppers of KRB-FX-CF2 (RFC 6113 sections 5.4.1.1, 5.4.3, 5.4.6).
const (
	PepperSubkeyArmor       = "subkeyarmor"
	PepperTicketArmor       = "ticketarmor"
	PepperClientChallenge   = "clientchallengearmor"
	PepperKDCChallenge      = "kdcchallengearmor"
	PepperChallengeLongTerm = "challengelongterm"
	PepperStrengthenKey     = "strengthenkey"
	PepperReplyKey          = "replykey"
)

// Armor is KrbFastArmor.
type Armor struct {
	ArmorType  int32  `asn1:"explicit,tag:0"`
	ArmorValue []byte `asn1:"explicit,tag:1"`
}

// ArmoredReq is KrbFastArmoredReq; PA-FX-FAST-REQUEST is it under [0]
// (armored-data).
type ArmoredReq struct {
	Armor       Armor               `asn1:"explicit,optional,tag:0"`
	ReqChecksum types.Checksum      `asn1:"explicit,tag:1"`
	EncFastReq  types.EncryptedData `asn1:"explicit,tag:2"`
}

// ArmoredRep is KrbFastArmoredRep; PA-FX-FAST-REPLY is it under [0].
type ArmoredRep struct {
	EncFastRep types.EncryptedData `asn1:"explicit,tag:0"`
}

// Req is KrbFastReq with the request body kept as its DER.
type Req struct {
	FastOptions asn1.BitString       `asn1:"explicit,tag:0"`
	PAData      types.PADataSequence `asn1:"explicit,tag:1"`
	ReqBody     asn1.RawValue        `asn1:"explicit,tag:2"`
}

// Response is KrbFastResponse, the decrypted enc-fast-rep.
type Response struct {
	PAData        types.PADataSequence `asn1:"explicit,tag:0"`
	StrengthenKey types.EncryptionKey  `asn1:"explicit,optional,tag:1"`
	Finished      Finished             `asn1:"explicit,optional,tag:2"`
	Nonce         int64                `asn1:"explicit,tag:3"`
}

// Finished is KrbFastFinished: what the KDC binds to the ticket.
type Finished struct {
	Timestamp      time.Time           `asn1:"generalized,explicit,tag:0"`
	Usec           int                 `asn1:"explicit,tag:1"`
	CRealm         string              `asn1:"generalstring,explicit,tag:2"`
	CName          types.PrincipalName `asn1:"explicit,tag:3"`
	TicketChecksum types.Checksum      `asn1:"explicit,tag:4"`
}

// MarshalReq encodes KrbFastReq with no FAST options set, the inner padata
// and the request body's DER.
func MarshalReq(padata types.PADataSequence, bodyDER []byte) ([]byte, error) {
	opts, err := asn1.Marshal(asn1.BitString{Bytes: make([]byte, 4), BitLength: 32})
	if err != nil {
		return nil, fmt.Errorf("marshal fast-options: %w", err)
	}
	pa, err := asn1.Marshal(padata)
	if err != nil {
		return nil, fmt.Errorf("marshal FAST padata: %w", err)
	}
	return Sequence(ExplicitTag(0, opts), ExplicitTag(1, pa), ExplicitTag(2, bodyDER)), nil
}

// MarshalChoice encodes a PA-FX-FAST value: the armoured request or reply
// under the CHOICE's [0] (armored-data).
func MarshalChoice(v any) ([]byte, error) {
	b, err := asn1.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("marshal PA-FX-FAST: %w", err)
	}
	return ExplicitTag(0, b), nil
}

// UnmarshalChoice decodes a PA-FX-FAST value into v (*ArmoredReq or
// *ArmoredRep); trailing bytes are an error.
func UnmarshalChoice(b []byte, v any) error {
	rest, err := asn1.UnmarshalWithParams(b, v, "explicit,tag:0")
	if err != nil {
		return fmt.Errorf("decode PA-FX-FAST: %w", err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("decode PA-FX-FAST: %d trailing bytes", len(rest))
	}
	return nil
}

// ExplicitTag wraps DER in a context-specific constructed tag [tag]
// (tag < 31).
func ExplicitTag(tag int, der []byte) []byte { return tlv(0xa0|byte(tag), der) }

// Sequence is a SEQUENCE of already encoded fields.
func Sequence(fields ...[]byte) []byte {
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
