package negotiate_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/negotiate"
	"github.com/segmesh/segmesh/pkg/negotiate/negotiatetest"
)

func TestVerifyReply(t *testing.T) {
	for _, et := range []int32{etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.RC4_HMAC} {
		key, b := replyFixture(t, et)
		_, sent, err := b.HeaderStamped(negotiate.Binding{})
		if err != nil {
			t.Fatal(err)
		}
		other := types.EncryptionKey{KeyType: key.KeyType, KeyValue: make([]byte, len(key.KeyValue))}
		tests := []struct {
			name   string
			key    types.EncryptionKey
			ctime  time.Time
			cusec  int
			ok     bool
			header string
		}{
			{"echoes the authenticator", key, sent, sent.Nanosecond() / 1000, true, ""},
			{"another microsecond", key, sent, sent.Nanosecond()/1000 + 1, false, ""},
			{"another second", key, sent.Add(time.Second), sent.Nanosecond() / 1000, false, ""},
			{"another key", other, sent, sent.Nanosecond() / 1000, false, ""},
			{"garbage", key, sent, 0, false, "Negotiate AAAA"},
			{"not base64", key, sent, 0, false, "Negotiate !!"},
			// gokrb5's acceptor answers accept-completed with no AP-REP:
			// nothing to check, as with no WWW-Authenticate at all.
			{"accept-completed without an AP-REP", key, sent, 0, true, "Negotiate oRQwEqADCgEAoQsGCSqGSIb3EgECAg=="},
		}
		for _, tt := range tests {
			h := tt.header
			if h == "" {
				if h, err = negotiatetest.MutualReply(tt.key, tt.ctime, tt.cusec); err != nil {
					t.Fatal(err)
				}
			}
			err := b.VerifyReply(h, sent)
			if (err == nil) != tt.ok || !tt.ok && !errors.Is(err, negotiate.ErrReplyMismatch) {
				t.Errorf("etype %d, %s: err = %v", et, tt.name, err)
			}
			if err != nil && strings.Contains(err.Error(), string(key.KeyValue)) {
				t.Error("error shows the key")
			}
		}
	}
}

func replyFixture(tb testing.TB, et int32) (types.EncryptionKey, *negotiate.Builder) {
	tb.Helper()
	_, b, key := bindingFixtureKey(tb, et)
	return key, b
}

// TestVerifyReplyShortCiphertext: a server answering with an AP-REP whose
// encrypted part is shorter than a confounder and a checksum gets a
// mismatch, not a panic (gokrb5's DecryptMessage slices before checking;
// a hostile Exchange crashed the edge with it).
func TestVerifyReplyShortCiphertext(t *testing.T) {
	for _, et := range []int32{etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.RC4_HMAC} {
		key, b := replyFixture(t, et)
		_, sent, err := b.HeaderStamped(negotiate.Binding{})
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n <= 40; n++ {
			h, err := negotiatetest.ReplyWithEncPart(types.EncryptedData{EType: key.KeyType, Cipher: make([]byte, n)})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.VerifyReply(h, sent); !errors.Is(err, negotiate.ErrReplyMismatch) {
				t.Errorf("etype %d, %d-byte ciphertext: err = %v, want a mismatch", et, n, err)
			}
		}
	}
}
