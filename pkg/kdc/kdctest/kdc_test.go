package kdctest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/kdc"
)

func asReq(tb testing.TB, cname string) []byte {
	tb.Helper()
	req := messages.ASReq{KDCReqFields: messages.KDCReqFields{
		PVNO: 5, MsgType: msgtype.KRB_AS_REQ,
		ReqBody: messages.KDCReqBody{
			KDCOptions: types.NewKrbFlags(),
			CName:      types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{cname}},
			Realm:      "LAB.TEST",
			SName:      types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", "LAB.TEST"}},
			Till:       time.Now().Add(time.Hour),
			Nonce:      42,
			EType:      []int32{etypeID.AES256_CTS_HMAC_SHA1_96},
		},
	}}
	b, err := req.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestFakeKDC(t *testing.T) {
	k := Start(t, Config{Realm: "LAB.TEST", Service: "svc", ServicePassword: "pw"})
	tr, err := kdc.New(kdc.Config{Realms: map[string][]string{"LAB.TEST": {k.Addr()}}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func()
		cname string
		code  int32
	}{
		{"pre-authentication required", func() {}, "svc", errorcode.KDC_ERR_PREAUTH_REQUIRED},
		{"unknown client", func() {}, "nobody", errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN},
		{"injected", func() { k.FailWith(KindAS, errorcode.KDC_ERR_CLIENT_REVOKED) }, "svc", errorcode.KDC_ERR_CLIENT_REVOKED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			_, err := tr.Exchange(ctx, "LAB.TEST", asReq(t, tt.cname))
			var ke *kdc.KRBError
			if !errors.As(err, &ke) || ke.Code() != tt.code {
				t.Fatalf("err = %v, want code %d", err, tt.code)
			}
			if tt.code == errorcode.KDC_ERR_PREAUTH_REQUIRED {
				var md types.PADataSequence
				if err := md.Unmarshal(ke.Msg.EData); err != nil || len(md) == 0 || md[0].PADataType != patype.PA_ETYPE_INFO2 {
					t.Fatalf("e-data %v %v", md, err)
				}
			}
		})
	}
	if n := k.Count(KindAS); n != 3 {
		t.Fatalf("AS count %d", n)
	}
	if r := k.Requests(KindAS); len(r) != 3 || r[0].Code != errorcode.KDC_ERR_PREAUTH_REQUIRED {
		t.Fatalf("recorded %+v", r)
	}

	// Stopped, then started again on the same address.
	k.FailWith(KindAS, 0)
	k.Close()
	if _, err := tr.Exchange(ctx, "LAB.TEST", asReq(t, "svc")); !errors.As(err, new(*kdc.UnreachableError)) {
		t.Fatalf("stopped KDC: %v", err)
	}
	if err := k.Listen(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Exchange(ctx, "LAB.TEST", asReq(t, "svc")); !errors.As(err, new(*kdc.KRBError)) {
		t.Fatalf("restarted KDC: %v", err)
	}
	// In-process exchange.
	if _, err := k.Exchange(ctx, "OTHER", asReq(t, "svc")); !errors.Is(err, kdc.ErrUnknownRealm) {
		t.Fatalf("other realm: %v", err)
	}
	if b := k.Handle([]byte{0x30, 0x00}); kdc.MessageType(b) != msgtype.KRB_ERROR {
		t.Fatal("garbage not answered with a KRB-ERROR")
	}
}
