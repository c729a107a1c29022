//go:build lab

package s4u_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/chksumtype"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/messages"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/s4u"
)

// isAES reports whether an etype is AES128 or AES256 (SHA-1 or SHA-2).
func isAES(e int32) bool {
	switch e {
	case etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96,
		etypeID.AES128_CTS_HMAC_SHA256_128, etypeID.AES256_CTS_HMAC_SHA384_192:
		return true
	}
	return false
}

// TestLabAESOnly: with RC4 off KDC-wide (lab.sh sets `kdc supported
// enctypes` to the AES types) and per account (msDS-SupportedEncryptionTypes
// 24 on svc_seg, exchange$ and the user grace), every path works with AES
// keys only, and the PA-FOR-USER checksum is the TGT session key's
// (HMAC-SHA1-96-AES256 for an AES256 key), as Windows Server 2025 requires.
func TestLabAESOnly(t *testing.T) {
	f := lab(t)
	t.Run("RC4 off KDC-wide", func(t *testing.T) {
		// alice has no msDS-SupportedEncryptionTypes and an RC4 key (her NT
		// hash): only the KDC-wide setting can refuse an RC4-only AS-REQ.
		tr, err := kdc.New(kdc.Config{Realms: map[string][]string{f["LAB_REALM"]: {f["LAB_KDC_DIRECT"]}}, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		c, err := s4u.New(s4u.Config{Realm: f["LAB_REALM"], Service: "alice", Password: f.secret(t, "LAB_USER_PASSWORD_FILE"),
			Exchanger: tr, Etypes: []int32{etypeID.RC4_HMAC}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.TGT(context.Background(), f["LAB_REALM"])
		var ke *s4u.KDCError
		if !errors.As(err, &ke) || ke.Code != errorcode.KDC_ERR_ETYPE_NOSUPP {
			t.Fatalf("RC4-only AS-REQ for alice: %v, want KDC_ERR_ETYPE_NOSUPP (kdc supported enctypes = AES only)", err)
		}
		t.Logf("Samba %s: %v", sambaSeries(f), err)
	})
	kt, err := keytab.Load(f["LAB_EXCHANGE_KEYTAB"])
	if err != nil {
		t.Fatal(err)
	}
	c := labClient(t, f, f["LAB_KDC_DIRECT"])
	ctx := context.Background()
	tgt, err := c.TGT(ctx, f["LAB_REALM"])
	if err != nil {
		t.Fatal(err)
	}
	if !isAES(tgt.SessionKey.KeyType) {
		t.Fatalf("TGT session key etype %d, want AES", tgt.SessionKey.KeyType)
	}
	// The checksum type pkg/s4u puts in PA-FOR-USER is the session key's
	// (padata.go); for AES256 that is HMAC-SHA1-96-AES256 (16).
	if tgt.SessionKey.KeyType == etypeID.AES256_CTS_HMAC_SHA1_96 {
		t.Logf("PA-FOR-USER checksum type %d (HMAC_SHA1_96_AES256) for session key etype %d",
			chksumtype.HMAC_SHA1_96_AES256, tgt.SessionKey.KeyType)
	}
	for _, user := range []string{"alice", "grace@lab.test"} {
		t.Run(user, func(t *testing.T) {
			self, err := c.S4U2Self(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			if !isAES(self.Ticket.EncPart.EType) || !isAES(self.SessionKey.KeyType) {
				t.Fatalf("S4U2Self ticket etype %d, session key %d: want AES", self.Ticket.EncPart.EType, self.SessionKey.KeyType)
			}
			tk, err := c.S4U2Proxy(ctx, self, f["LAB_TARGET_SPN"])
			if err != nil {
				t.Fatal(err)
			}
			if !isAES(tk.Ticket.EncPart.EType) || !isAES(tk.SessionKey.KeyType) {
				t.Fatalf("S4U2Proxy ticket etype %d, session key %d: want AES", tk.Ticket.EncPart.EType, tk.SessionKey.KeyType)
			}
			var dec messages.Ticket
			if err := dec.Unmarshal(tk.DER); err != nil {
				t.Fatal(err)
			}
			if err := dec.DecryptEncPart(kt, nil); err != nil {
				t.Fatalf("ticket does not decrypt with the AES-only Exchange keytab: %v", err)
			}
			if code, body := acceptedByExchange(t, f, tk); code != http.StatusOK {
				t.Fatalf("Exchange stand-in answered %d: %s", code, body)
			}
		})
	}
}

// TestLabProtectedUsers records what the lab's Samba does with S4U for a
// member of Protected Users (frank): Windows refuses to delegate such a user
// (recorded replies in pkg/s4u's unit tests cover that); Samba 4.17 and 4.22
// serve him. The day Samba refuses, this fails: update deploy/lab/README.md's
// table and DESIGN.md "Directory versions".
func TestLabProtectedUsers(t *testing.T) {
	f := lab(t)
	c := labClient(t, f, f["LAB_KDC_DIRECT"])
	tk, err := c.ServiceTicket(context.Background(), "frank", f["LAB_TARGET_SPN"])
	if err != nil {
		t.Fatalf("Samba %s now refuses S4U for a Protected Users member (Windows does): %v; record it in deploy/lab/README.md", sambaSeries(f), err)
	}
	if code, body := acceptedByExchange(t, f, tk); code != http.StatusOK {
		t.Fatalf("Exchange stand-in answered %d: %s", code, body)
	}
	t.Logf("Samba %s serves frank (Protected Users): %s, forwardable %v", sambaSeries(f), tk.ClientString(), tk.Forwardable())
}
