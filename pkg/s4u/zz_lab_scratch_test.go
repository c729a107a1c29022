//go:build lab

package s4u_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/segmesh/segmesh/pkg/negotiate"
)

func TestScratch(t *testing.T) {
	f := lab(t)
	c := labClient(t, f, f["LAB_KDC_DIRECT"])
	tk, err := c.ServiceTicket(context.Background(), "alice", f["LAB_TARGET_SPN"])
	if err != nil {
		t.Fatal(err)
	}
	cl := client.NewWithPassword("alice", "LAB.TEST", "unused", config.New())
	nt, err := spnego.NewNegTokenInitKRB5(cl, tk.Ticket, tk.SessionKey)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := (&spnego.SPNEGOToken{Init: true, NegTokenInit: nt}).Marshal()
	try := func(name, h string) {
		req, _ := http.NewRequest("GET", f["LAB_EXCHANGE_URL"]+"/x", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		t.Logf("%s: %d", name, resp.StatusCode)
	}
	try("gokrb5", "Negotiate "+base64.StdEncoding.EncodeToString(tok))
	for _, fl := range []uint32{negotiate.FlagInteg | negotiate.FlagConf, negotiate.DefaultFlags, negotiate.FlagMutual} {
		b, _ := negotiate.New(tk.DER, tk.SessionKey, tk.CName, tk.CRealm, negotiate.Options{Flags: fl})
		h, _ := b.Header()
		try("ours", h)
	}
}
