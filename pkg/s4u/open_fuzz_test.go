package s4u

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/kdc"
)

// FuzzOpenReply feeds arbitrary bytes as the plaintext of a KDC reply's
// encrypted part (EncASRepPart or EncTGSRepPart), encrypted under the key
// the client opens it with: the decoding and the checks after decryption,
// which FuzzDecodeReply's random ciphertexts never reach, and what callers
// read of the ticket (its flags, its client). Nothing panics,
// and a reply that opens has a session key of an offered etype, the nonce
// asked for, and the ticket's server.
func FuzzOpenReply(f *testing.F) {
	key := types.EncryptionKey{KeyType: 18, KeyValue: make([]byte, 32)}
	const nonce = 7
	offered := []int32{18, 17}
	sname := types.PrincipalName{NameType: 2, NameString: []string{"HTTP", "mail.lab.test"}}
	tkt := messages.Ticket{TktVNO: 5, Realm: "LAB.TEST", SName: sname, EncPart: types.EncryptedData{EType: 18, Cipher: []byte{1}}}
	now := time.Date(2026, 12, 5, 19, 0, 0, 0, time.UTC)
	enc := messages.EncKDCRepPart{
		Key: types.EncryptionKey{KeyType: 18, KeyValue: make([]byte, 32)}, LastReqs: []messages.LastReq{{LRType: 0, LRValue: now}},
		Nonce: nonce, Flags: asn1.BitString{Bytes: []byte{0x40, 0x81, 0, 0}, BitLength: 32},
		AuthTime: now, StartTime: now, EndTime: now.Add(10 * time.Hour), RenewTill: now.Add(7 * 24 * time.Hour),
		SRealm: "LAB.TEST", SName: sname,
	}
	b, err := asn1.Marshal(enc)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(asn1tools.AddASNAppTag(b, asnAppTag.EncASRepPart))
	f.Add(asn1tools.AddASNAppTag(b, asnAppTag.EncTGSRepPart))
	f.Add([]byte{0x7a, 0x80})
	// Empty flags (RFC 4120 wants 32 bits): Forwardable and Renewable
	// indexed past them (TestAttackEmptyFlagsInAKDCReply).
	enc.Flags = asn1.BitString{}
	if b, err = asn1.Marshal(enc); err != nil {
		f.Fatal(err)
	}
	f.Add(asn1tools.AddASNAppTag(b, asnAppTag.EncTGSRepPart))
	f.Fuzz(func(t *testing.T, pt []byte) {
		ed, err := crypto.GetEncryptedData(pt, key, keyusage.TGS_REP_ENCPART_SESSION_KEY, 0)
		if err != nil {
			t.Fatal(err)
		}
		r := &kdcReply{CRealm: "LAB.TEST", CName: types.PrincipalName{NameType: 1, NameString: []string{"alice"}},
			Ticket: tkt, TicketDER: []byte{1}, EncPart: ed}
		tk, err := r.open(key, keyusage.TGS_REP_ENCPART_SESSION_KEY, nonce, offered)
		if err != nil {
			return
		}
		if !slices.Contains(offered, tk.SessionKey.KeyType) || len(tk.SessionKey.KeyValue) == 0 {
			t.Fatalf("opened with session key etype %d of %d bytes", tk.SessionKey.KeyType, len(tk.SessionKey.KeyValue))
		}
		if !sameNameFold(tk.SName, sname) {
			t.Fatalf("opened for server %v, the ticket is for %v", tk.SName, sname)
		}
		// What the callers read of an opened ticket.
		_, _, _ = tk.Forwardable(), tk.Renewable(now), tk.ClientString()
	})
}

// FuzzKDCError feeds arbitrary bytes as a KDC's KRB-ERROR, and its e-data,
// through what the client makes of them: the KDCError with its code's name
// and hint and the NTSTATUS of an AD KDC's KERB-EXT-ERROR, the ETYPE-INFO2
// of a PREAUTH_REQUIRED, and an armoured error's unwrapping. Seeds are the
// KRB-ERRORs recorded from the lab's Samba KDC.
func FuzzKDCError(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "samba", "*.der"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no recorded KRB-ERRORs in testdata/samba: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		var m messages.KRBError
		if err := m.Unmarshal(b); err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		if len(m.EData) > 0 {
			f.Add(m.EData)
		}
	}
	f.Add([]byte{0x30, 0x80})
	a := &fastArmor{key: types.EncryptionKey{KeyType: 18, KeyValue: make([]byte, 32)}}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, edata := range [][]byte{b, nil} {
			var m messages.KRBError
			if edata == nil {
				if m.Unmarshal(b) != nil {
					continue
				}
			} else {
				m = messages.KRBError{ErrorCode: 25, EData: edata}
			}
			for _, stage := range []Stage{StageASReq, StageS4U2Self, StageS4U2Proxy, StageRenew} {
				err := newKDCError(stage, "LAB.TEST", &kdc.KRBError{Realm: "LAB.TEST", KDC: "dc1:88", Msg: m})
				ke, ok := err.(*KDCError)
				if !ok || ke.Code != m.ErrorCode {
					t.Fatalf("KRB-ERROR code %d became %v", m.ErrorCode, err)
				}
				_, _ = ke.Error(), IsTemporary(err)
			}
			_ = etypeInfoFromError(m.EData)
			_, _ = a.unwrapError(m, 7)
		}
	})
}
