package s4u_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
	"github.com/segmesh/segmesh/pkg/s4u"
)

// rc4OnlyKDC is a rogue KDC: the fake KDC whose PREAUTH_REQUIRED offers
// RC4 only in ETYPE-INFO2. It records the etype of every PA-ENC-TIMESTAMP
// it receives.
type rc4OnlyKDC struct {
	*tamper
	mu   sync.Mutex
	sent []int32
}

func newRC4OnlyKDC(tb testing.TB) *rc4OnlyKDC {
	r := &rc4OnlyKDC{}
	r.tamper = &tamper{k: kdctest.Start(tb, labConfig()), tb: tb, fix: func(tb testing.TB, req, rep []byte) []byte {
		var as messages.ASReq
		if as.Unmarshal(req) == nil {
			for _, pa := range as.PAData {
				if pa.PADataType == patype.PA_ENC_TIMESTAMP {
					var ed types.EncryptedData
					if ed.Unmarshal(pa.PADataValue) == nil {
						r.mu.Lock()
						r.sent = append(r.sent, ed.EType)
						r.mu.Unlock()
					}
				}
			}
		}
		var m messages.KRBError
		if kdc.MessageType(rep) != msgtype.KRB_ERROR || m.Unmarshal(rep) != nil || m.ErrorCode != errorcode.KDC_ERR_PREAUTH_REQUIRED {
			return rep
		}
		info, err := marshalETypeInfo2(types.ETypeInfo2{{EType: etypeID.RC4_HMAC}})
		if err != nil {
			tb.Fatal(err)
		}
		ed, err := marshalPAData(types.PADataSequence{{PADataType: patype.PA_ETYPE_INFO2, PADataValue: info}, {PADataType: patype.PA_ENC_TIMESTAMP}})
		if err != nil {
			tb.Fatal(err)
		}
		m.EData = ed
		b, err := m.Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}}
	return r
}

func (r *rc4OnlyKDC) timestamps() []int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sent)
}

// TestAttackRogueKDCDowngrade: a KDC the gateway was pointed at by a
// spoofed _kerberos._tcp SRV answer (d505846; or anyone on the path to a
// configured DC) answers the service account's AS-REQ with
// PREAUTH_REQUIRED offering RC4 only. The gateway then sent
// PA-ENC-TIMESTAMP encrypted with the RC4 key, the account's NT hash:
// material for a fast offline guess of the KCD service account's password,
// which can impersonate every user to Exchange. With the default etypes
// (AES256, AES128, RC4) the gateway followed the downgrade; RC4 is now
// opt-in (Config.AllowRC4, segmesh.ticket.allowRc4), and the refusal is
// KDC_ERR_ETYPE_NOSUPP with a hint naming both causes and both fixes.
func TestAttackRogueKDCDowngrade(t *testing.T) {
	r := newRC4OnlyKDC(t)
	c := newClient(t, r, nil)
	defer c.Wait()
	_, err := c.TGT(context.Background(), realm)
	if sent := r.timestamps(); slices.Contains(sent, etypeID.RC4_HMAC) {
		t.Fatalf("the gateway sent PA-ENC-TIMESTAMP under RC4 (etype 23) to a KDC that asked for it; etypes sent: %v", sent)
	}
	ke, ok := errors.AsType[*s4u.KDCError](err)
	if !ok || ke.Code != errorcode.KDC_ERR_ETYPE_NOSUPP || ke.Stage != s4u.StageASReq {
		t.Fatalf("TGT from an RC4-only KDC: %v, want a KDCError KDC_ERR_ETYPE_NOSUPP at %s", err, s4u.StageASReq)
	}
	for _, want := range []string{"msDS-SupportedEncryptionTypes", "reset its password", "segmesh.ticket.allowRc4", "rogue KDC", "domainController"} {
		if !strings.Contains(ke.Hint, want) {
			t.Errorf("hint %q does not say %q", ke.Hint, want)
		}
	}
}

// TestEtypesOffered: the AS-REQ offers AES256 and AES128 by default; with
// AllowRC4 RC4 comes last (and a KDC offering only RC4 then gets the
// timestamp under it: the opt-in does what it says); explicit Etypes win.
func TestEtypesOffered(t *testing.T) {
	aes := []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA1_96}
	tests := []struct {
		name     string
		allowRC4 bool
		etypes   []int32
		want     []int32
		wantRC4  bool // a timestamp goes to the RC4-only KDC under RC4
	}{
		{"default", false, nil, aes, false},
		{"allowRc4 adds RC4 last", true, nil, append(slices.Clone(aes), etypeID.RC4_HMAC), true},
		{"explicit etypes win", true, []int32{etypeID.AES256_CTS_HMAC_SHA1_96}, []int32{etypeID.AES256_CTS_HMAC_SHA1_96}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mod := func(c *s4u.Config) { c.AllowRC4, c.Etypes = tt.allowRC4, tt.etypes }
			k := kdctest.Start(t, labConfig())
			c := newClient(t, newTransport(t, map[string][]string{realm: {k.Addr()}}), mod)
			if _, err := c.TGT(context.Background(), realm); err != nil {
				t.Fatal(err)
			}
			c.Wait()
			reqs := k.Requests(kdctest.KindAS)
			if len(reqs) == 0 {
				t.Fatal("no AS-REQ reached the KDC")
			}
			var as messages.ASReq
			if err := as.Unmarshal(reqs[0].Raw); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(as.ReqBody.EType, tt.want) {
				t.Errorf("AS-REQ etypes %v, want %v", as.ReqBody.EType, tt.want)
			}

			r := newRC4OnlyKDC(t)
			rc := newClient(t, r, mod)
			_, _ = rc.TGT(context.Background(), realm)
			rc.Wait()
			if got := slices.Contains(r.timestamps(), etypeID.RC4_HMAC); got != tt.wantRC4 {
				t.Errorf("timestamp under RC4 to an RC4-only KDC: %v, want %v (sent %v)", got, tt.wantRC4, r.timestamps())
			}
		})
	}
}

// TestAttackRogueKDCIterations: the AES analogue of the RC4 downgrade. A
// rogue KDC answers PREAUTH_REQUIRED with ETYPE-INFO2 asking for AES with
// a string-to-key iteration count of 1 (or any below RFC 3962's 4096, the
// count AD, Samba and MIT use): the PA-ENC-TIMESTAMP the gateway would
// send under that key lets the password be guessed thousands of times
// faster than under 4096 iterations. The gateway must refuse such a count
// before it sends any timestamp.
func TestAttackRogueKDCIterations(t *testing.T) {
	for _, tt := range []struct {
		params string
		ok     bool
	}{
		{"00000001", false},
		{"00000fff", false},
		{"00001000", true}, // 4096: what every KDC uses; the rewrite keeps the real key
	} {
		t.Run(tt.params, func(t *testing.T) {
			k := kdctest.Start(t, labConfig())
			var mu sync.Mutex
			stamps := 0
			rewrite := rewriteIterations(tt.params)
			x := &tamper{k: k, tb: t, fix: func(tb testing.TB, req, rep []byte) []byte {
				var as messages.ASReq
				if as.Unmarshal(req) == nil && slices.ContainsFunc(as.PAData, func(pa types.PAData) bool { return pa.PADataType == patype.PA_ENC_TIMESTAMP }) {
					mu.Lock()
					stamps++
					mu.Unlock()
				}
				return rewrite(tb, req, rep)
			}}
			c := newClient(t, x, nil)
			_, err := c.TGT(context.Background(), realm)
			c.Wait()
			mu.Lock()
			defer mu.Unlock()
			if tt.ok {
				if err != nil || stamps == 0 {
					t.Fatalf("4096 iterations: %v (%d timestamps)", err, stamps)
				}
				return
			}
			if stamps != 0 {
				t.Fatalf("the gateway sent %d PA-ENC-TIMESTAMP under a key of %s iterations (err %v)", stamps, tt.params, err)
			}
			if err == nil || !strings.Contains(err.Error(), "iterations") {
				t.Errorf("err = %v, want the refusal naming the iteration count", err)
			}
		})
	}
}
