package s4u

import (
	"encoding/binary"
	"fmt"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Pre-authentication data types and constants gokrb5 does not define.
const (
	// PADataPACRequest is PA-PAC-REQUEST (MS-KILE 2.2.3).
	PADataPACRequest int32 = 128
	// PADataForUser is PA-FOR-USER (MS-SFU 2.2.1).
	PADataForUser int32 = 129
	// PADataPACOptions is PA-PAC-OPTIONS (MS-KILE 2.2.10).
	PADataPACOptions int32 = 167

	// KeyUsageForUserChecksum is the key usage of the PA-FOR-USER checksum
	// (MS-SFU 2.2.1: KERB_NON_KERB_CKSUM_SALT).
	KeyUsageForUserChecksum = 17

	// OptionCNameInAddlTkt is KDC option bit 14, cname-in-addl-tkt
	// (MS-SFU 2.2.5): the client of the reply is the client of the
	// additional ticket.
	OptionCNameInAddlTkt = 14

	// PACOptionResourceBasedDelegation is the PAC-OPTIONS bit telling the
	// KDC the client supports resource-based constrained delegation
	// (MS-KILE 2.2.10).
	PACOptionResourceBasedDelegation = 3

	// NameTypeEnterprise is NT-ENTERPRISE (RFC 6806): one name string
	// holding a UPN, resolved by the KDC.
	NameTypeEnterprise int32 = 10
)

// PAForUser is PA-FOR-USER (MS-SFU 2.2.1).
type PAForUser struct {
	UserName    types.PrincipalName `asn1:"explicit,tag:0"`
	UserRealm   string              `asn1:"generalstring,explicit,tag:1"`
	Cksum       types.Checksum      `asn1:"explicit,tag:2"`
	AuthPackage string              `asn1:"generalstring,explicit,tag:3"`
}

// ForUserChecksumInput returns the bytes the PA-FOR-USER checksum covers:
// the name type as 4-byte little-endian, the name strings joined with
// nothing, the realm, and "Kerberos" (MS-SFU 2.2.1).
func ForUserChecksumInput(name types.PrincipalName, realm, authPackage string) []byte {
	b := make([]byte, 4, 4+len(realm)+len(authPackage)+32)
	binary.LittleEndian.PutUint32(b, uint32(name.NameType))
	for _, s := range name.NameString {
		b = append(b, s...)
	}
	b = append(b, realm...)
	return append(b, authPackage...)
}

// NewPAForUser builds PA-FOR-USER for a user, keyed with the TGT session
// key. The checksum type follows the session key's etype (HMAC-SHA1-96-AES256
// or -AES128 for AES keys, HMAC-MD5 for RC4): MS-SFU says HMAC-MD5 always,
// but Windows Server 2025 KDCs answer KRB_AP_ERR_MODIFIED to HMAC-MD5 with an
// AES session key, and Samba/Heimdal accept the key's own type.
func NewPAForUser(name types.PrincipalName, realm string, sessionKey types.EncryptionKey) (types.PAData, error) {
	et, err := crypto.GetEtype(sessionKey.KeyType)
	if err != nil {
		return types.PAData{}, fmt.Errorf("PA-FOR-USER checksum: %w", err)
	}
	const pkg = "Kerberos"
	sum, err := et.GetChecksumHash(sessionKey.KeyValue, ForUserChecksumInput(name, realm, pkg), KeyUsageForUserChecksum)
	if err != nil {
		return types.PAData{}, fmt.Errorf("PA-FOR-USER checksum: %w", err)
	}
	v := PAForUser{
		UserName:    name,
		UserRealm:   realm,
		Cksum:       types.Checksum{CksumType: et.GetHashID(), Checksum: sum},
		AuthPackage: pkg,
	}
	b, err := asn1.Marshal(v)
	if err != nil {
		return types.PAData{}, fmt.Errorf("marshal PA-FOR-USER: %w", err)
	}
	return types.PAData{PADataType: PADataForUser, PADataValue: b}, nil
}

// paPACOptions is PA-PAC-OPTIONS (MS-KILE 2.2.10).
type paPACOptions struct {
	Flags asn1.BitString `asn1:"explicit,tag:0"`
}

// newPAPACOptions returns PA-PAC-OPTIONS with the resource-based
// constrained delegation bit set.
func newPAPACOptions() (types.PAData, error) {
	f := types.NewKrbFlags()
	types.SetFlag(&f, PACOptionResourceBasedDelegation)
	b, err := asn1.Marshal(paPACOptions{Flags: f})
	if err != nil {
		return types.PAData{}, fmt.Errorf("marshal PA-PAC-OPTIONS: %w", err)
	}
	return types.PAData{PADataType: PADataPACOptions, PADataValue: b}, nil
}

// paPACRequest is KERB-PA-PAC-REQUEST (MS-KILE 2.2.3).
type paPACRequest struct {
	IncludePAC bool `asn1:"explicit,tag:0"`
}

func newPAPACRequest() (types.PAData, error) {
	b, err := asn1.Marshal(paPACRequest{IncludePAC: true})
	if err != nil {
		return types.PAData{}, fmt.Errorf("marshal PA-PAC-REQUEST: %w", err)
	}
	return types.PAData{PADataType: PADataPACRequest, PADataValue: b}, nil
}
