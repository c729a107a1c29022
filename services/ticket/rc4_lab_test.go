//go:build lab

package ticket

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/kdc"
)

// asRecorder records, on their way to the real KDC, the etypes each AS-REQ
// offers and the etype of each PA-ENC-TIMESTAMP.
type asRecorder struct {
	next       kdc.Exchanger
	mu         sync.Mutex
	offered    [][]int32
	timestamps []int32
}

func (r *asRecorder) Exchange(ctx context.Context, realm string, req []byte) ([]byte, error) {
	var as messages.ASReq
	if as.Unmarshal(req) == nil {
		r.mu.Lock()
		r.offered = append(r.offered, as.ReqBody.EType)
		for _, pa := range as.PAData {
			var ed types.EncryptedData
			if pa.PADataType == patype.PA_ENC_TIMESTAMP && ed.Unmarshal(pa.PADataValue) == nil {
				r.timestamps = append(r.timestamps, ed.EType)
			}
		}
		r.mu.Unlock()
	}
	return r.next.Exchange(ctx, realm, req)
}

// TestLabAllowRC4: against the lab's Samba (svc_seg has AES keys), the
// client the ticket role builds from the lab's config.json offers AES only
// by default, and with segmesh.ticket.allowRc4 RC4 last; either way Samba
// picks AES for the pre-authentication (allowing RC4 does not downgrade an
// account with AES keys) and Exchange accepts the ticket.
func TestLabAllowRC4(t *testing.T) {
	lab := labenv.Up(t)
	cfg, _, err := config.Load(lab.SegmeshConfig)
	if err != nil {
		t.Fatalf("the lab's segmesh config: %v", err)
	}
	aes := []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA1_96}
	tests := []struct {
		name     string
		allowRC4 bool
		offered  []int32
	}{
		{"default", false, aes},
		{"allowRc4", true, append(slices.Clone(aes), etypeID.RC4_HMAC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := ConfigFrom(cfg)
			if tc.AllowRC4 {
				t.Fatalf("the lab's config.json sets %s", KeyAllowRC4)
			}
			tc.AllowRC4 = tt.allowRC4
			tr, err := kdc.New(kdc.Config{Realms: tc.KDCs, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			rec := &asRecorder{next: tr}
			cl, err := tc.Build(BuildOptions{Exchanger: rec})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Wait()
			tk, err := cl.ServiceTicket(context.Background(), "alice@lab.test", lab.TargetSPN)
			if err != nil {
				t.Fatal(err)
			}
			if got := askExchange(t, lab, tk); got != `alice\@lab.test@LAB.TEST` {
				t.Fatalf("Exchange saw %q", got)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.offered) == 0 || len(rec.timestamps) == 0 {
				t.Fatalf("AS-REQs %v, timestamps %v: want a pre-authenticated AS exchange", rec.offered, rec.timestamps)
			}
			for _, o := range rec.offered {
				if !slices.Equal(o, tt.offered) {
					t.Errorf("AS-REQ offered %v, want %v", o, tt.offered)
				}
			}
			for _, e := range rec.timestamps {
				if e != etypeID.AES256_CTS_HMAC_SHA1_96 {
					t.Errorf("PA-ENC-TIMESTAMP under etype %d, want AES256 (18): svc_seg has AES keys", e)
				}
			}
		})
	}
}
