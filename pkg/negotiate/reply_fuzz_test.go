package negotiate_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/negotiate"
	"github.com/segmesh/segmesh/pkg/negotiate/negotiatetest"
)

// Modes of FuzzVerifyReply: what the fuzzed bytes are.
const (
	replyToken   = iota // the token after "Negotiate " (SPNEGO NegTokenResp or a bare Kerberos GSS token)
	replyEncPart        // the AP-REP's EncAPRepPart, encrypted under the session key
	replyHeader         // the whole WWW-Authenticate value
	replyModes
)

// FuzzVerifyReply feeds arbitrary bytes as Exchange's mutual
// authentication answer: as the token, as the plaintext of the AP-REP's
// encrypted part under the right session key (which random tokens never
// reach), and as the whole header value. Nothing panics, every refusal
// wraps ErrReplyMismatch (but a value without the Negotiate prefix), and
// no error shows the session key.
func FuzzVerifyReply(f *testing.F) {
	key, b := replyFixture(f, etypeID.AES256_CTS_HMAC_SHA1_96)
	_, sent, err := b.HeaderStamped(negotiate.Binding{})
	if err != nil {
		f.Fatal(err)
	}
	good, err := negotiatetest.MutualReply(key, sent, sent.Nanosecond()/1000)
	if err != nil {
		f.Fatal(err)
	}
	tok, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(good, negotiate.HeaderPrefix))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(replyToken), tok)
	f.Add(uint8(replyHeader), []byte(good))
	// accept-completed without an AP-REP, as gokrb5's acceptor answers.
	f.Add(uint8(replyHeader), []byte("Negotiate oRQwEqADCgEAoQsGCSqGSIb3EgECAg=="))
	short, err := negotiatetest.ReplyWithEncPart(types.EncryptedData{EType: key.KeyType, Cipher: make([]byte, 27)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(replyHeader), []byte(short))
	enc, err := asn1.Marshal(struct {
		CTime time.Time `asn1:"generalized,explicit,tag:0"`
		Cusec int       `asn1:"explicit,tag:1"`
	}{sent.UTC().Truncate(time.Second), sent.Nanosecond() / 1000})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(replyEncPart), asn1tools.AddASNAppTag(enc, asnAppTag.EncAPRepPart))
	f.Fuzz(func(t *testing.T, mode uint8, in []byte) {
		var h string
		switch mode % replyModes {
		case replyToken:
			h = negotiate.HeaderPrefix + base64.StdEncoding.EncodeToString(in)
		case replyEncPart:
			ed, err := crypto.GetEncryptedData(in, key, keyusage.AP_REP_ENCPART, 0)
			if err != nil {
				t.Fatal(err)
			}
			if h, err = negotiatetest.ReplyWithEncPart(ed); err != nil {
				t.Fatal(err)
			}
		default:
			h = string(in)
		}
		err := b.VerifyReply(h, sent)
		if err == nil {
			return
		}
		if !errors.Is(err, negotiate.ErrReplyMismatch) && strings.HasPrefix(h, negotiate.HeaderPrefix) {
			t.Fatalf("refusal does not wrap ErrReplyMismatch: %v", err)
		}
		if strings.Contains(err.Error(), string(key.KeyValue)) {
			t.Fatal("the error shows the session key")
		}
	})
}
