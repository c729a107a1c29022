package s4u

import (
	"context"
	"errors"
	"testing"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
)

// TestStringToKeyMatchesGokrb5: the bounded, stoppable derivation gives
// gokrb5's keys (differential, every etype the client offers or may meet).
func TestStringToKeyMatchesGokrb5(t *testing.T) {
	for _, e := range []int32{etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96,
		etypeID.AES128_CTS_HMAC_SHA256_128, etypeID.RC4_HMAC, etypeID.DES3_CBC_SHA1_KD} {
		et, err := crypto.GetEtype(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, params := range []string{et.GetDefaultStringToKeyParams(), "00001001", "00002000"} {
			if e == etypeID.RC4_HMAC || e == etypeID.DES3_CBC_SHA1_KD {
				params = et.GetDefaultStringToKeyParams()
			}
			want, err := et.StringToKey("Svc-Passw0rd!", "LAB.TESTsvc_seg", params)
			if err != nil {
				t.Fatal(err)
			}
			got, err := stringToKey(context.Background(), e, "Svc-Passw0rd!", "LAB.TESTsvc_seg", params)
			if err != nil {
				t.Fatalf("etype %d params %s: %v", e, params, err)
			}
			if string(got) != string(want) {
				t.Fatalf("etype %d params %s: key differs from gokrb5's", e, params)
			}
		}
	}
}

func TestStringToKeyBounds(t *testing.T) {
	tests := []struct {
		name   string
		params string
		ok     bool
	}{
		{"AD's 4096", "00001000", true},
		{"1: a rogue KDC's downgrade", "00000001", false},
		{"4095", "00000fff", false},
		{"2^24 (MIT refuses)", "01000000", false},
		{"2^32-1", "ffffffff", false},
		{"0 means 2^32", "00000000", false},
		{"not 4 bytes", "001000", false},
		{"not hex", "zz001000", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := stringToKey(context.Background(), etypeID.AES256_CTS_HMAC_SHA1_96, "pw", "salt", tt.params)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
		})
	}
	// The highest count accepted stops as soon as the context has ended.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := stringToKey(ctx, etypeID.AES256_CTS_HMAC_SHA1_96, "pw", "salt", "00ffffff"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled derivation: err = %v", err)
	}
}
