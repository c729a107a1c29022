//go:build lab

package labenv

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
)

// negotiateHeader builds a fresh SPNEGO Authorization value (a new
// authenticator) from the service ticket in ccache, as the edge does.
func negotiateHeader(t *testing.T, ccache, spn string) string {
	t.Helper()
	cc, err := credentials.LoadCCache(ccache)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cc.GetEntries() {
		if e.Server.PrincipalName.PrincipalNameString() != spn {
			continue
		}
		var tkt messages.Ticket
		if err := tkt.Unmarshal(e.Ticket); err != nil {
			t.Fatal(err)
		}
		// The client carries only the name for the authenticator: no password.
		cl := client.NewWithPassword(e.Client.PrincipalName.PrincipalNameString(), e.Client.Realm, "", krbconfig.New())
		init, err := spnego.NewNegTokenInitKRB5(cl, tkt, e.Key)
		if err != nil {
			t.Fatal(err)
		}
		b, err := (&spnego.SPNEGOToken{Init: true, NegTokenInit: init}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return "Negotiate " + base64.StdEncoding.EncodeToString(b)
	}
	t.Fatalf("no ticket for %s in %s", spn, ccache)
	return ""
}

// TestExchangeRefusesReplay shows the stand-in keeps a replay cache as
// Exchange does: an Authorization value works once.
func TestExchangeRefusesReplay(t *testing.T) {
	lab := Up(t)
	aliceCC, out, err := s4u(t, lab, svcCCache(t, lab), "alice", lab.TargetSPN)
	if err != nil {
		t.Fatalf("kvno: %v\n%s", err, out)
	}
	get := func(auth string) (int, string) {
		req, err := http.NewRequest("GET", lab.ExchangeURL+"/EWS/Exchange.asmx", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rep echoReply
		_ = json.NewDecoder(resp.Body).Decode(&rep)
		return resp.StatusCode, rep.RemoteUser
	}
	first := negotiateHeader(t, aliceCC, lab.TargetSPN)
	if code, user := get(first); code != http.StatusOK || user != "alice@"+lab.Realm {
		t.Fatalf("first use: %d %q, want 200 alice@%s", code, user, lab.Realm)
	}
	if code, _ := get(first); code != http.StatusUnauthorized {
		t.Errorf("replayed Authorization: %d, want 401", code)
	}
	if code, user := get(negotiateHeader(t, aliceCC, lab.TargetSPN)); code != http.StatusOK || user != "alice@"+lab.Realm {
		t.Errorf("fresh authenticator, same ticket: %d %q, want 200", code, user)
	}
}
