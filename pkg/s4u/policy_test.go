package s4u

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/messages"

	"github.com/segmesh/segmesh/pkg/kdc"
)

// TestPolicyRefusal: Samba 4.22's two authentication policy refusals, as
// recorded in the lab (TestLabFAST, TestLabPolicyAtS4U2Proxy), carry their
// NTSTATUS from the e-data into KDCError and its text, with the
// catalogue's policy fix for the stage; other e-data gives no status.
func TestPolicyRefusal(t *testing.T) {
	tests := []struct {
		name   string
		stage  Stage
		code   int32
		edata  string
		status uint32
		words  []string // in the hint
	}{
		{"AllowedToAuthenticateFrom, AS-REQ not armoured", StageASReq, 12, "3015a103020103a20e040c700000c00000000001000000",
			StatusInvalidWorkstation, []string{"AllowedToAuthenticateFrom", "FAST", "armor account", "0xC0000070"}},
		{"AllowedToAuthenticateTo at S4U2Proxy", StageS4U2Proxy, 12, "3015a103020103a20e040c130400c00000000003000000",
			StatusAuthenticationFirewallFailed, []string{"AllowedToAuthenticateTo", "not the user", "--computer-allowed-to-authenticate-to"}},
		{"S4U2Proxy policy refusal without e-data", StageS4U2Proxy, 12, "", 0, []string{"AllowedToAuthenticateTo"}},
		{"disabled user at S4U2Self", StageS4U2Self, 12, "", 0, []string{"disabled"}},
		{"METHOD-DATA e-data is no KERB-EXT-ERROR", StageASReq, 25, "300d300ba103020113a204040230", 0, nil},
		{"truncated KERB-EXT-ERROR", StageASReq, 12, "3009a103020103a2020400", 0, nil},
		{"KERB-ERROR-DATA of another type", StageASReq, 12, "3015a103020102a20e040c700000c00000000001000000", 0, nil},
	}
	for _, tt := range tests {
		ed, err := hex.DecodeString(tt.edata)
		if err != nil {
			t.Fatal(err)
		}
		ke := &kdc.KRBError{Realm: "LAB.TEST", Msg: messages.KRBError{ErrorCode: tt.code, EData: ed}}
		var got *KDCError
		if !errors.As(newKDCError(tt.stage, "LAB.TEST", ke), &got) {
			t.Fatalf("%s: not a KDCError", tt.name)
		}
		if got.NTStatus != tt.status {
			t.Errorf("%s: NTSTATUS %#x, want %#x", tt.name, got.NTStatus, tt.status)
		}
		if s := got.Error(); (tt.status != 0) != strings.Contains(s, fmt.Sprintf("(%d) NTSTATUS %#08x: ", tt.code, tt.status)) {
			t.Errorf("%s: Error() shows the status wrongly: %s", tt.name, s)
		}
		for _, w := range tt.words {
			if !strings.Contains(got.Hint, w) {
				t.Errorf("%s: hint lacks %q: %s", tt.name, w, got.Hint)
			}
		}
	}
}
