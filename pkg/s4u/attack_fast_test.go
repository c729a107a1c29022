package s4u_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/s4u"
)

// armoured reports whether an AS-REQ carries PA-FX-FAST.
func armoured(req []byte) (messages.ASReq, bool) {
	var as messages.ASReq
	if as.Unmarshal(req) != nil {
		return as, false
	}
	return as, slices.ContainsFunc(as.PAData, func(pa types.PAData) bool { return pa.PADataType == patype.PA_FX_FAST })
}

// withoutPA returns md without the padata of type typ.
func withoutPA(md types.PADataSequence, typ int32) types.PADataSequence {
	return slices.DeleteFunc(slices.Clone(md), func(pa types.PAData) bool { return pa.PADataType == typ })
}

// TestAttackFASTRogue: someone between the gateway and the KDC (a spoofed
// _kerberos._tcp answer, or the path to a configured DC) tampers with the
// armoured AS exchange of the service account (839f047). The FAST reply is
// sealed with the armor key, which only the gateway and the KDC know, so:
// an AS-REP stripped of its PA-FX-FAST, with a garbage one, or replayed
// from an earlier exchange is refused; an unarmoured PREAUTH_REQUIRED in
// place of the armoured one (a downgrade, with the attacker's salt) never
// makes the gateway send its pre-authentication outside FAST; padata
// added outside FAST (another salt) is not used. Attacker review; held.
func TestAttackFASTRogue(t *testing.T) {
	ctx := context.Background()
	// A reply recorded from an honest exchange, for the replay.
	var recorded []byte
	{
		k := armorKDC(t, nil)
		rec := &tamper{k: k, tb: t, fix: func(tb testing.TB, req, rep []byte) []byte {
			if _, ok := armoured(req); ok && kdc.MessageType(rep) == msgtype.KRB_AS_REP {
				recorded = slices.Clone(rep)
			}
			return rep
		}}
		c := newClient(t, rec, func(c *s4u.Config) { c.ArmorAccount, c.ArmorPassword = armorAccount, armorPassword })
		if _, err := c.TGT(ctx, realm); err != nil {
			t.Fatal(err)
		}
		c.Wait()
		if recorded == nil {
			t.Fatal("no armoured AS-REP recorded")
		}
	}
	editRep := func(edit func(m *messages.ASRep)) func(testing.TB, []byte, []byte) []byte {
		return func(tb testing.TB, req, rep []byte) []byte {
			if _, ok := armoured(req); !ok || kdc.MessageType(rep) != msgtype.KRB_AS_REP {
				return rep
			}
			var m messages.ASRep
			if err := m.Unmarshal(rep); err != nil {
				tb.Fatal(err)
			}
			edit(&m)
			b, err := m.Marshal()
			if err != nil {
				tb.Fatal(err)
			}
			return b
		}
	}
	plainPreauth := func(tb testing.TB, req, rep []byte) []byte {
		var e messages.KRBError
		if _, ok := armoured(req); !ok || kdc.MessageType(rep) != msgtype.KRB_ERROR || e.Unmarshal(rep) != nil {
			return rep
		}
		info, err := marshalETypeInfo2(types.ETypeInfo2{{EType: etypeID.AES256_CTS_HMAC_SHA1_96, Salt: "ATTACKER.SALTsvc"}})
		if err != nil {
			tb.Fatal(err)
		}
		ed, err := marshalPAData(types.PADataSequence{{PADataType: patype.PA_ETYPE_INFO2, PADataValue: info}, {PADataType: patype.PA_ENC_TIMESTAMP}})
		if err != nil {
			tb.Fatal(err)
		}
		e.ErrorCode, e.EData = errorcode.KDC_ERR_PREAUTH_REQUIRED, ed
		b, err := e.Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name   string
		fix    func(testing.TB, []byte, []byte) []byte
		wantOK bool
	}{
		{name: "PA-FX-FAST stripped from the AS-REP", fix: editRep(func(m *messages.ASRep) { m.PAData = withoutPA(m.PAData, patype.PA_FX_FAST) })},
		{name: "PA-FX-FAST replaced by garbage", fix: editRep(func(m *messages.ASRep) {
			m.PAData = append(withoutPA(m.PAData, patype.PA_FX_FAST), types.PAData{PADataType: patype.PA_FX_FAST, PADataValue: []byte{0xa0, 0x03, 0x30, 0x01, 0x00}})
		})},
		{name: "an earlier exchange's AS-REP replayed", fix: func(tb testing.TB, req, rep []byte) []byte {
			if _, ok := armoured(req); ok && kdc.MessageType(rep) == msgtype.KRB_AS_REP {
				return recorded
			}
			return rep
		}},
		{name: "unarmoured PREAUTH_REQUIRED with the attacker's salt", fix: plainPreauth},
		{name: "padata with another salt added outside FAST", wantOK: true, fix: editRep(func(m *messages.ASRep) {
			info, err := marshalETypeInfo2(types.ETypeInfo2{{EType: etypeID.AES256_CTS_HMAC_SHA1_96, Salt: "ATTACKER.SALTsvc"}})
			if err != nil {
				t.Fatal(err)
			}
			m.PAData = append(m.PAData, types.PAData{PADataType: patype.PA_ETYPE_INFO2, PADataValue: info})
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := armorKDC(t, nil)
			var mu sync.Mutex
			var plain []string // service-account requests sent without FAST
			x := &tamper{k: k, tb: t, fix: func(tb testing.TB, req, rep []byte) []byte {
				if as, ok := armoured(req); !ok && kdc.MessageType(req) == msgtype.KRB_AS_REQ && slices.Contains(as.ReqBody.CName.NameString, "svc_seg") {
					mu.Lock()
					plain = append(plain, "AS-REQ")
					mu.Unlock()
				}
				return tt.fix(tb, req, rep)
			}}
			c := newClient(t, x, func(c *s4u.Config) { c.ArmorAccount, c.ArmorPassword = armorAccount, armorPassword })
			_, err := c.TGT(ctx, realm)
			c.Wait()
			t.Logf("TGT: %v", err)
			if (err == nil) != tt.wantOK {
				t.Fatalf("TGT: %v, want ok %v", err, tt.wantOK)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(plain) > 0 {
				t.Errorf("the service account sent %d AS-REQ(s) without FAST", len(plain))
			}
		})
	}
}
