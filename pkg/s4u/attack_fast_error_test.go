package s4u_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/s4u"
)

// TestAttackFASTUnarmouredError: someone on the path answers the service
// account's first armoured AS-REQ with an unarmoured KRB-ERROR in place of
// the KDC's armoured one: PREAUTH_REQUIRED with the attacker's salt, or
// KRB_AP_ERR_SKEW with a time an hour ahead. Nothing in it is authenticated
// (RFC 6113 section 5.4.4: a FAST KDC returns its errors inside the armour),
// so, as MIT's client does (krb5int_fast_process_error: an error that does
// not decrypt under the armor key is the KDC's final answer, retry = 0),
// the gateway does not act on it: no second request with the attacker's
// salt or clock, the error comes back naming its code and saying it was not
// armoured. Attacker review 2, "left".
func TestAttackFASTUnarmouredError(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		code int32
		edit func(tb testing.TB, e *messages.KRBError)
	}{
		{name: "PREAUTH_REQUIRED with the attacker's salt", code: errorcode.KDC_ERR_PREAUTH_REQUIRED, edit: func(tb testing.TB, e *messages.KRBError) {
			info, err := marshalETypeInfo2(types.ETypeInfo2{{EType: etypeID.AES256_CTS_HMAC_SHA1_96, Salt: "ATTACKER.SALTsvc"}})
			if err != nil {
				tb.Fatal(err)
			}
			ed, err := marshalPAData(types.PADataSequence{{PADataType: patype.PA_ETYPE_INFO2, PADataValue: info}})
			if err != nil {
				tb.Fatal(err)
			}
			e.ErrorCode, e.EData = errorcode.KDC_ERR_PREAUTH_REQUIRED, ed
		}},
		{name: "KRB_AP_ERR_SKEW an hour ahead", code: errorcode.KRB_AP_ERR_SKEW, edit: func(_ testing.TB, e *messages.KRBError) {
			e.ErrorCode, e.EData = errorcode.KRB_AP_ERR_SKEW, nil
			e.STime, e.Susec = time.Now().Add(time.Hour).UTC().Truncate(time.Second), 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := armorKDC(t, nil)
			var mu sync.Mutex
			sent := 0 // the service account's armoured AS-REQs
			x := &tamper{k: k, tb: t, fix: func(tb testing.TB, req, rep []byte) []byte {
				as, ok := armoured(req)
				if !ok || !slices.Contains(as.ReqBody.CName.NameString, "svc_seg") {
					return rep
				}
				mu.Lock()
				sent++
				first := sent == 1
				mu.Unlock()
				var e messages.KRBError
				if !first || kdc.MessageType(rep) != msgtype.KRB_ERROR || e.Unmarshal(rep) != nil {
					return rep
				}
				tc.edit(tb, &e)
				b, err := e.Marshal()
				if err != nil {
					tb.Fatal(err)
				}
				return b
			}}
			c := newClient(t, x, func(c *s4u.Config) { c.ArmorAccount, c.ArmorPassword = armorAccount, armorPassword })
			_, err := c.TGT(ctx, realm)
			c.Wait()
			mu.Lock()
			defer mu.Unlock()
			if sent != 1 {
				t.Errorf("the service account sent %d armoured AS-REQs, want 1: the unarmoured error was acted on", sent)
			}
			var ke *s4u.KDCError
			if !errors.As(err, &ke) || ke.Code != tc.code || !strings.Contains(err.Error(), "not armoured") {
				t.Fatalf("TGT: %v, want the KDC error %d saying it was not armoured", err, tc.code)
			}
		})
	}
}
