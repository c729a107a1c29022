package s4u

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
)

func TestForUserChecksumInput(t *testing.T) {
	tests := []struct {
		name  types.PrincipalName
		realm string
		want  string
	}{
		{types.PrincipalName{NameType: 10, NameString: []string{"bob.smith@lab.test"}}, "LAB.TEST",
			"0a000000" + hex.EncodeToString([]byte("bob.smith@lab.testLAB.TESTKerberos"))},
		{types.PrincipalName{NameType: 1, NameString: []string{"a", "b"}}, "R",
			"01000000" + hex.EncodeToString([]byte("abRKerberos"))},
	}
	for _, tt := range tests {
		if got := hex.EncodeToString(ForUserChecksumInput(tt.name, tt.realm, "Kerberos")); got != tt.want {
			t.Errorf("ForUserChecksumInput(%v, %s) = %s, want %s", tt.name, tt.realm, got, tt.want)
		}
	}
}

// recordingExchanger keeps the replies of a real exchange as fuzz seeds.
type recordingExchanger struct {
	next    kdc.Exchanger
	replies [][]byte
}

func (r *recordingExchanger) Exchange(ctx context.Context, realm string, req []byte) ([]byte, error) {
	b, err := r.next.Exchange(ctx, realm, req)
	if err == nil {
		r.replies = append(r.replies, b)
	}
	return b, err
}

func seedReplies(tb testing.TB) [][]byte {
	tb.Helper()
	k, err := kdctest.New(kdctest.Config{Realm: "LAB.TEST", Service: "svc", ServicePassword: "pw",
		Users: []string{"alice"}, DelegateTo: []string{"HTTP/x"}, Targets: map[string]string{"HTTP/x": "pw2"}})
	if err != nil {
		tb.Fatal(err)
	}
	rec := &recordingExchanger{next: k}
	c, err := New(Config{Realm: "LAB.TEST", Service: "svc", Password: "pw", Exchanger: rec})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := c.ServiceTicket(context.Background(), "alice", "HTTP/x"); err != nil {
		tb.Fatal(err)
	}
	return rec.replies
}

func TestDecodeReplyKeepsTicketDER(t *testing.T) {
	reps := seedReplies(t)
	if len(reps) != 3 {
		t.Fatalf("%d replies", len(reps))
	}
	r, err := decodeReply(reps[1], false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(reps[1], r.TicketDER) || r.TicketDER[0] != 0x61 {
		t.Fatal("ticket DER is not the reply's own bytes")
	}
	if _, err := decodeReply(reps[1], true); err == nil {
		t.Fatal("TGS-REP accepted as AS-REP")
	}
	if _, err := decodeReply(append(append([]byte{}, reps[1]...), 0), false); err == nil {
		t.Fatal("trailing bytes accepted")
	}
	if _, err := r.open(types.EncryptionKey{KeyType: 18, KeyValue: make([]byte, 32)}, keyusage.TGS_REP_ENCPART_SESSION_KEY, 1, []int32{18}); err == nil {
		t.Fatal("reply opened with a wrong key")
	}
}

func FuzzDecodeReply(f *testing.F) {
	for _, b := range seedReplies(f) {
		f.Add(b)
	}
	if files, err := filepath.Glob(filepath.Join("testdata", "samba", "*.der")); err == nil {
		for _, name := range files {
			if b, err := os.ReadFile(name); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte{0x6d, 0x00})
	f.Add([]byte{0x6b, 0x84, 0x7f, 0xff, 0xff, 0xff})
	key := types.EncryptionKey{KeyType: 18, KeyValue: make([]byte, 32)}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, as := range []bool{false, true} {
			r, err := decodeReply(b, as)
			if err != nil {
				continue
			}
			if len(r.TicketDER) == 0 || len(r.Ticket.SName.NameString) == 0 {
				t.Fatal("decoded reply without a ticket")
			}
			_, _ = r.open(key, keyusage.TGS_REP_ENCPART_SESSION_KEY, 0, []int32{18, 17})
		}
		_ = etypeInfoFromError(b)
	})
}

// TestSambaRecordedErrors decodes KRB-ERRORs recorded from the lab's Samba
// AD KDC (TestLabRecordReplies) and maps them.
func TestSambaRecordedErrors(t *testing.T) {
	tests := []struct {
		file  string
		stage Stage
		code  int32
		hint  string
	}{
		{"as-preauth-required", StageASReq, 25, "password"},
		{"s4u2self-unknown-user", StageS4U2Self, 6, "altSecurityIdentities"},
		{"s4u2proxy-not-delegated", StageS4U2Proxy, 13, "msDS-AllowedToDelegateTo"},
		{"s4u2proxy-sensitive-user", StageS4U2Proxy, 13, "Protected Users"},
		// Samba refuses to renew an S4U2Proxy ticket (TestLabRenew).
		{"renew-s4u2proxy-refused", StageRenew, 12, "does not renew service tickets"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "samba", tt.file+".der"))
			if err != nil {
				t.Fatal(err)
			}
			var m messages.KRBError
			if err := m.Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			err = newKDCError(tt.stage, "LAB.TEST", &kdc.KRBError{Realm: "LAB.TEST", KDC: "127.0.0.2:88", Msg: m})
			var ke *KDCError
			if !errors.As(err, &ke) || ke.Code != tt.code || !strings.Contains(ke.Hint, tt.hint) {
				t.Fatalf("err = %v", err)
			}
			if tt.code == 25 {
				info := etypeInfoFromError(m.EData)
				if len(info) == 0 || info[0].EType != 18 || info[0].Salt != "LAB.TESTsvc_seg" {
					t.Fatalf("ETYPE-INFO2 from Samba's e-data: %+v", info)
				}
			}
		})
	}
}
