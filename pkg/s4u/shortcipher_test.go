package s4u

import (
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/krbfast"
)

// TestShortCiphertextFromTheKDC: a KDC reply (or a FAST armoured reply)
// whose encrypted part is shorter than a confounder and a checksum is an
// error, not a panic that takes the ticket role down (CI's fuzz stage found
// it in FuzzFASTResponse: gokrb5's DecryptMessage slices before checking).
func TestShortCiphertextFromTheKDC(t *testing.T) {
	for _, et := range []int32{etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.RC4_HMAC} {
		size := map[int32]int{etypeID.AES128_CTS_HMAC_SHA1_96: 16, etypeID.AES256_CTS_HMAC_SHA1_96: 32, etypeID.RC4_HMAC: 16}[et]
		key := types.EncryptionKey{KeyType: et, KeyValue: make([]byte, size)}
		for n := 0; n <= 40; n++ {
			ed := types.EncryptedData{EType: et, Cipher: make([]byte, n)}
			rep := &kdcReply{EncPart: ed}
			if _, err := rep.open(key, keyusage.TGS_REP_ENCPART_SESSION_KEY, 1, []int32{et}); err == nil {
				t.Errorf("etype %d: a %d-byte reply opened", et, n)
			}
			v, err := krbfast.MarshalChoice(krbfast.ArmoredRep{EncFastRep: ed})
			if err != nil {
				t.Fatal(err)
			}
			a := &fastArmor{key: key}
			if _, err := a.open(types.PADataSequence{{PADataType: patype.PA_FX_FAST, PADataValue: v}}, 1); err == nil {
				t.Errorf("etype %d: a %d-byte FAST reply opened", et, n)
			}
		}
	}
}
