package negotiatetest

import (
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Ticket is a service's keytab and a ticket to it for a user, minted in the
// test as a KDC would: what an Acceptor needs and what a negotiate.Builder
// is made from.
type Ticket struct {
	Keytab *keytab.Keytab
	DER    []byte
	Key    types.EncryptionKey
	CName  types.PrincipalName
	Realm  string
}

// NewTicket mints a forwardable one-hour ticket for user@realm to spn
// (service/host, key from password) with a session key of etype.
func NewTicket(tb testing.TB, spn, realm, password, user string, etype int32) *Ticket {
	tb.Helper()
	kt := keytab.New()
	if err := kt.AddEntry(spn, realm, password, time.Now(), 1, etype); err != nil {
		tb.Fatal(err)
	}
	now := time.Now().UTC()
	f := types.NewKrbFlags()
	types.SetFlag(&f, flags.Forwardable)
	cname := types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{user}}
	sname := types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: strings.Split(spn, "/")}
	tkt, key, err := messages.NewTicket(cname, realm, sname, realm, f, kt, etype, 1, now, now, now.Add(time.Hour), now.Add(time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	der, err := tkt.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return &Ticket{Keytab: kt, DER: der, Key: key, CName: cname, Realm: realm}
}
