//go:build lab

package s4u

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/chksumtype"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/types"
)

// TestLabForUserChecksum records which PA-FOR-USER checksum types the lab's
// KDC accepts with an AES TGT session key (RC4 is off KDC-wide and for
// svc_seg): the key's own HMAC-SHA1-96-AES256, which segmesh sends; the
// HMAC-MD5 MS-SFU names, which Windows Server 2025 refuses with
// KRB_AP_ERR_MODIFIED under an AES key (recorded replies); and a corrupted
// AES checksum, which must be refused or the KDC checks nothing. The
// expectations are what each Samba series did here (deploy/lab/README.md):
// the test fails the day that changes.
func TestLabForUserChecksum(t *testing.T) {
	f, c := labInternalClient(t)
	series := f["LAB_SAMBA_SERIES"]
	if b, err := os.ReadFile(filepath.Join(f["LAB_DIR"], "samba", ".series")); err == nil && series == "" {
		series = strings.TrimSpace(string(b))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tgt, err := c.TGT(ctx, c.realm)
	if err != nil {
		t.Fatal(err)
	}
	if tgt.SessionKey.KeyType != etypeID.AES256_CTS_HMAC_SHA1_96 {
		t.Fatalf("TGT session key etype %d, want AES256 (18): the lab is not AES-only", tgt.SessionKey.KeyType)
	}
	user := types.PrincipalName{NameType: NameTypeEnterprise, NameString: []string{"alice@lab.test"}}
	input := ForUserChecksumInput(user, c.realm, "Kerberos")
	sum := func(etype int32) types.Checksum {
		t.Helper()
		et, err := crypto.GetEtype(etype)
		if err != nil {
			t.Fatal(err)
		}
		s, err := et.GetChecksumHash(tgt.SessionKey.KeyValue, input, KeyUsageForUserChecksum)
		if err != nil {
			t.Fatal(err)
		}
		return types.Checksum{CksumType: et.GetHashID(), Checksum: s}
	}
	aes := sum(etypeID.AES256_CTS_HMAC_SHA1_96)
	bad := types.Checksum{CksumType: aes.CksumType, Checksum: append([]byte(nil), aes.Checksum...)}
	bad.Checksum[0] ^= 1
	md5 := sum(etypeID.RC4_HMAC) // HMAC-MD5 (-138) keyed with the AES session key
	if md5.CksumType != chksumtype.KERB_CHECKSUM_HMAC_MD5 {
		t.Fatalf("RC4's checksum type is %d, want HMAC-MD5 (-138)", md5.CksumType)
	}
	tests := []struct {
		name  string
		cksum types.Checksum
		want  map[string]int32 // Samba series -> code (0: served); a series not listed is only logged
	}{
		{"HMAC-SHA1-96-AES256 (segmesh)", aes, map[string]int32{"4.17": 0, "4.22": 0}},
		{"HMAC-MD5 under the AES key (MS-SFU)", md5, map[string]int32{"4.22": 0}},
		{"corrupted HMAC-SHA1-96-AES256", bad, map[string]int32{"4.22": 31}},
	}
	for _, tt := range tests {
		v, err := asn1.Marshal(PAForUser{UserName: user, UserRealm: c.realm, Cksum: tt.cksum, AuthPackage: "Kerberos"})
		if err != nil {
			t.Fatal(err)
		}
		pacOpts, err := newPAPACOptions()
		if err != nil {
			t.Fatal(err)
		}
		r := tgsRequest{
			realm: c.realm, sname: c.selfName(), tgt: tgt,
			options: []int{flags.Forwardable, flags.Renewable, flags.Canonicalize},
			padata:  []types.PAData{{PADataType: PADataForUser, PADataValue: v}, pacOpts},
			now:     c.now(), lifetime: c.cfg.TicketLifetime, renew: c.cfg.RenewLifetime, etypes: c.cfg.Etypes,
		}
		got, err := c.tgsExchange(ctx, StageS4U2Self, c.realm, &r)
		var code int32
		var ke *KDCError
		switch {
		case err == nil:
			if cerr := c.checkUser(StageS4U2Self, user, c.realm, got); cerr != nil {
				t.Errorf("%s: served, but %v", tt.name, cerr)
			}
		case errors.As(err, &ke):
			code = ke.Code
		default:
			t.Fatalf("%s: %v", tt.name, err)
		}
		t.Logf("Samba %s, %s (type %d): code %d (0 = served)", series, tt.name, tt.cksum.CksumType, code)
		if want, ok := tt.want[series]; ok && code != want {
			t.Errorf("Samba %s, %s: code %d, want %d as recorded in deploy/lab/README.md (update the table if Samba changed)",
				series, tt.name, code, want)
		}
	}
}
