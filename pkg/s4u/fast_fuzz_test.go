package s4u

import (
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/krbfast"
)

// FuzzFASTResponse feeds arbitrary bytes to the FAST reply decoding, as a
// decrypted KrbFastResponse (decode, the armoured error inside, the
// KrbFastFinished check against a reply) and as an undecrypted PA-FX-FAST
// and e-data: nothing may panic, and an error is an error, not a ticket.
func FuzzFASTResponse(f *testing.F) {
	key := types.EncryptionKey{KeyType: 18, KeyValue: make([]byte, 32)}
	const nonce = 7
	inner := messages.NewKRBError(types.PrincipalName{NameString: []string{"krbtgt", "LAB.TEST"}}, "LAB.TEST", 25, "")
	der, err := inner.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	for _, r := range []krbfast.Response{
		{PAData: types.PADataSequence{{PADataType: patype.PA_FX_ERROR, PADataValue: der}, {PADataType: patype.PA_FX_COOKIE, PADataValue: []byte("c")}}, Nonce: nonce},
		{StrengthenKey: key, Finished: krbfast.Finished{Timestamp: now, CRealm: "LAB.TEST",
			CName: types.PrincipalName{NameString: []string{"svc_seg"}}, TicketChecksum: types.Checksum{CksumType: 16, Checksum: make([]byte, 12)}}, Nonce: nonce},
	} {
		pt, err := asn1.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pt)
		enc, err := crypto.GetEncryptedData(pt, key, keyusage.KEY_USAGE_FAST_REP, 0)
		if err != nil {
			f.Fatal(err)
		}
		v, err := krbfast.MarshalChoice(krbfast.ArmoredRep{EncFastRep: enc})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
	}
	f.Add([]byte{0xa0, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		a := &fastArmor{key: key}
		if r, err := decodeFASTResponse(b, nonce); err == nil {
			if e, err := a.innerError(messages.KRBError{ErrorCode: 25}, r); err == nil && e.ErrorCode == 0 && len(e.EData) > 0 {
				var md types.PADataSequence
				if md.Unmarshal(e.EData) != nil {
					t.Fatalf("inner error e-data is no METHOD-DATA: %x", e.EData)
				}
			}
			rep := &kdcReply{CRealm: "LAB.TEST", CName: types.PrincipalName{NameString: []string{"svc_seg"}}, TicketDER: []byte{1}}
			if a.checkFinished(rep, r) == nil {
				t.Fatal("a KrbFastFinished not made with the armor key was accepted")
			}
		}
		if _, err := a.open(types.PADataSequence{{PADataType: patype.PA_FX_FAST, PADataValue: b}}, nonce); err == nil && len(b) < 40 {
			t.Fatalf("%d bytes opened as a FAST response", len(b))
		}
		_, _ = a.unwrapError(messages.KRBError{ErrorCode: 25, EData: b}, nonce)
	})
}
