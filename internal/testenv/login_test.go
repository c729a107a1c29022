package testenv

import (
	"net/http"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpoll"
)

// TestLoginIdentity: with segmesh.identity.loginIdentity, a device whose
// certificate carries only the cloud email alice.cloud@example.com is served
// as the directory user holding that address in proxyAddresses, with her
// on-premises UPN; onPremisesSamAccountName delegates the user's
// sAMAccountName in her domain even when her UPN is one the KDC does not
// know. Through the real roles and the wire-speaking directory and KDC, in
// both shapes. Issue 23 item 2.
func TestLoginIdentity(t *testing.T) {
	tests := []struct {
		login, want string
	}{
		{"onPremisesUpn", "user=alice@test.realm@TEST.REALM\n"},
		// bob's UPN robert@corp.example is no principal the KDC knows;
		// bob@test.realm (sAMAccountName@domain) is.
		{"onPremisesSamAccountName", "user=bob@test.realm@TEST.REALM\n"},
	}
	for _, mode := range Modes {
		for _, tt := range tests {
			t.Run(string(mode)+"/"+tt.login, func(t *testing.T) {
				e := StartWith(t, mode, func(cfg map[string]any) {
					section(section(cfg, "segmesh"), "identity")["loginIdentity"] = tt.login
				})
				e.AddDirectoryUser("alice", "alice@test.realm", map[string][]string{
					"mail": {"alice@test.realm"}, "proxyAddresses": {"SMTP:alice@test.realm", "smtp:alice.cloud@example.com"}})
				e.AddDirectoryUser("bob", "robert@corp.example", map[string][]string{"mail": {"robert@example.com"}})
				device, email := "alice-phone", "alice.cloud@example.com"
				if tt.login == "onPremisesSamAccountName" {
					device, email = "bob-phone", "robert@example.com"
				}
				code, body := post(e.Client(e.EmailDevice(device, email)), e.easURL("Sync", "u", "LOGIN1"))
				if code != http.StatusOK || body != tt.want {
					t.Fatalf("%d %q, want %q", code, body, tt.want)
				}
				// Nobody holds this address: refused before Exchange, and the
				// log names the setting.
				before := e.Exchange.Served()
				if code, body := post(e.Client(e.EmailDevice("stranger", "who@example.com")), e.easURL("Sync", "who", "WHO1")); code == http.StatusOK {
					t.Fatalf("served a certificate nobody holds: %q", body)
				}
				if e.Exchange.Served() != before {
					t.Fatal("the refused certificate reached Exchange")
				}
				if !testpoll.Within(5*time.Second, func() bool { return grepLines(e.Logs(), "segmesh.identity.loginIdentity is "+tt.login) != "" }) {
					t.Fatalf("no log line names the setting:\n%s", e.Logs())
				}
			})
		}
	}
}
