package krbfast

import (
	"encoding/hex"
	"testing"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/types"
)

// TestCF2 checks KRB-FX-CF2 against MIT krb5's regression vectors
// (src/lib/crypto/crypto_tests/t_cf2.in and .expected): each key is
// string-to-key of its name salted with itself, peppers "a" and "b".
func TestCF2(t *testing.T) {
	tests := []struct {
		etype int32
		want  string
	}{
		{17, "97df97e4b798b29eb31ed7280287a92a"},
		{18, "4d6ca4e629785c1f01baf55e2e548566b9617ae3a96868c337cb93b5e72b1c7b"},
		{23, "24d7f6b6bae4e5c00d2082c5ebab3672"},
	}
	for _, tt := range tests {
		key := func(s string) types.EncryptionKey {
			t.Helper()
			et, err := crypto.GetEtype(tt.etype)
			if err != nil {
				t.Fatal(err)
			}
			k, err := et.StringToKey(s, s, et.GetDefaultStringToKeyParams())
			if err != nil {
				t.Fatal(err)
			}
			return types.EncryptionKey{KeyType: tt.etype, KeyValue: k}
		}
		got, err := CF2(key("key1"), key("key2"), "a", "b")
		if err != nil {
			t.Fatalf("etype %d: %v", tt.etype, err)
		}
		if h := hex.EncodeToString(got.KeyValue); h != tt.want || got.KeyType != tt.etype {
			t.Errorf("etype %d: CF2 = %d/%s, want %s", tt.etype, got.KeyType, h, tt.want)
		}
	}
	if _, err := CF2(types.EncryptionKey{KeyType: 16, KeyValue: make([]byte, 24)}, types.EncryptionKey{KeyType: 16}, "a", "b"); err == nil {
		t.Error("CF2 of a DES3 key: no error")
	}
}
