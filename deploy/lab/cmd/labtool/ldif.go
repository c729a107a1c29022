package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"unicode/utf16"
)

// baseDN is the lab domain's naming context.
const baseDN = "DC=lab,DC=test"

// userAccountControl flags (MS-ADTS 2.2.16).
const (
	uacAccountDisable       = 0x2
	uacPasswdNotReqd        = 0x20
	uacNormalAccount        = 0x200
	uacWorkstationTrust     = 0x1000
	uacDontExpirePassword   = 0x10000
	uacNotDelegated         = 0x100000
	uacTrustedToAuthForDele = 0x1000000
)

// ldifOptions selects what writeLDIF prints.
type ldifOptions struct {
	pkiDir                                     string
	named                                      bool
	from, to                                   int
	userPassword, svcPassword, machinePassword string
	// generatedPassword is the generated users' password; empty means none.
	generatedPassword string
	// variants prints only the delegation variant accounts (and no users).
	variants bool
	// policy prints only the accounts of the authentication policy cases.
	policy bool
}

// variantAccounts are service accounts that differ from svc_seg in one
// delegation or encryption setting each, for the lab tests of RBCD, "Kerberos
// only" delegation and no delegation at all (svc_seg's password, AES only).
// RBCD itself (msDS-AllowedToActOnBehalfOfOtherIdentity on exchange$, a
// security descriptor) is set by lab.sh with samba-tool.
func (o ldifOptions) variantAccounts() []*account {
	normal := uacNormalAccount | uacDontExpirePassword
	svc := func(sam, host string, uac int, delegTo string) *account {
		a := o.user(sam, sam+"@lab.test", normal|uac, o.svcPassword)
		a.add("servicePrincipalName", "HTTP/"+host+".lab.test")
		if delegTo != "" {
			a.add("msDS-AllowedToDelegateTo", delegTo)
		}
		a.add("msDS-SupportedEncryptionTypes", "24")
		return a
	}
	// grace is a user whose account allows AES only.
	grace := o.user("grace", "grace@lab.test", normal, o.userPassword)
	grace.add("msDS-SupportedEncryptionTypes", "24")
	return []*account{
		// RBCD only: protocol transition, no msDS-AllowedToDelegateTo.
		svc("svc_rbcd", "rbcd", uacTrustedToAuthForDele, ""),
		// Neither kind of delegation: protocol transition only.
		svc("svc_nodeleg", "nodeleg", uacTrustedToAuthForDele, ""),
		// "Use Kerberos only": classic delegation without protocol transition.
		svc("svc_konly", "konly", 0, "HTTP/exchange.lab.test"),
		grace,
	}
}

// policyAccounts are the accounts of the authentication policy cases
// (Samba 4.20+; lab.sh creates the policies and assigns them): svc_denied is
// svc_seg's twin that the policy on exchange$ does not allow to
// authenticate to it (AllowedToAuthenticateTo), svc_armor is svc_seg's twin
// whose policy allows it to authenticate only from the computer seggw$ (its
// AS exchange must be armoured with seggw$'s TGT), and seggw$ is the
// gateway host's computer account (the computer accounts' password).
func (o ldifOptions) policyAccounts() []*account {
	normal := uacNormalAccount | uacDontExpirePassword
	svc := func(sam, host string) *account {
		a := o.user(sam, sam+"@lab.test", normal|uacTrustedToAuthForDele, o.svcPassword)
		a.add("servicePrincipalName", "HTTP/"+host+".lab.test")
		a.add("msDS-AllowedToDelegateTo", "HTTP/exchange.lab.test")
		a.add("msDS-SupportedEncryptionTypes", "24")
		return a
	}
	gw := o.computer("seggw", "HOST/seggw.lab.test")
	gw.add("msDS-SupportedEncryptionTypes", "24")
	return []*account{svc("svc_denied", "denied"), svc("svc_armor", "armor"), gw}
}

// unicodePwd encodes a password as AD wants it: UTF-16LE of the quoted value.
func unicodePwd(pw string) string {
	u := utf16.Encode([]rune(`"` + pw + `"`))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// account is one LDIF entry; attrs keep their order.
type account struct {
	dn    string
	attrs [][2]string
}

func (a *account) add(k, v string) { a.attrs = append(a.attrs, [2]string{k, v}) }

func (a *account) write(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "dn: %s\n", a.dn); err != nil {
		return err
	}
	for _, kv := range a.attrs {
		if _, err := fmt.Fprintf(w, "%s: %s\n", kv[0], kv[1]); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w)
	return err
}

func (o ldifOptions) userCert(name string) (string, error) {
	der, err := os.ReadFile(filepath.Join(o.pkiDir, "users", name, "cert.der"))
	if err != nil {
		return "", fmt.Errorf("certificate of %s: %w", name, err)
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

func (o ldifOptions) user(sam, upn string, uac int, pw string) *account {
	a := &account{dn: fmt.Sprintf("CN=%s,CN=Users,%s", sam, baseDN)}
	a.add("objectClass", "user")
	a.add("sAMAccountName", sam)
	a.add("userPrincipalName", upn)
	a.add("mail", upn)
	a.add("givenName", sam)
	a.add("displayName", sam)
	if pw == "" {
		// Generated users have no password: hashing one costs Samba about
		// 25 ms per user, and S4U needs no user key.
		uac |= uacPasswdNotReqd
	}
	a.add("userAccountControl", fmt.Sprint(uac))
	if pw != "" {
		a.add("unicodePwd:", unicodePwd(pw))
	}
	return a
}

func (o ldifOptions) computer(name, spn string) *account {
	a := &account{dn: fmt.Sprintf("CN=%s,CN=Computers,%s", name, baseDN)}
	a.add("objectClass", "computer")
	a.add("sAMAccountName", name+"$")
	a.add("dNSHostName", name+".lab.test")
	a.add("servicePrincipalName", spn)
	a.add("userAccountControl", fmt.Sprint(uacWorkstationTrust))
	a.add("unicodePwd:", unicodePwd(o.machinePassword))
	return a
}

// writeLDIF prints one ldbadd batch: the named accounts and the generated
// users from..to. Entries that need a second step (group membership) follow
// as ldbmodify records in a separate call: see lab.sh.
func writeLDIF(w io.Writer, o ldifOptions) error {
	bw := bufio.NewWriter(w)
	var accounts []*account
	switch {
	case o.policy:
		accounts = o.policyAccounts()
	case o.variants:
		accounts = o.variantAccounts()
	case o.named:
		normal := uacNormalAccount | uacDontExpirePassword
		svc := o.user("svc_seg", "svc_seg@lab.test", normal|uacTrustedToAuthForDele, o.svcPassword)
		svc.add("servicePrincipalName", "HTTP/seg.lab.test")
		svc.add("msDS-AllowedToDelegateTo", "HTTP/exchange.lab.test")
		svc.add("msDS-SupportedEncryptionTypes", "24")
		accounts = append(accounts, svc)

		ex := o.computer("exchange", "HTTP/exchange.lab.test")
		ex.add("msDS-SupportedEncryptionTypes", "24")
		accounts = append(accounts, ex, o.computer("other", "HTTP/other.lab.test"))

		alice := o.user("alice", "alice@lab.test", normal, o.userPassword)
		bob := o.user("bob", "bob.smith@lab.test", normal, o.userPassword)
		cert, err := o.userCert("bob")
		if err != nil {
			return err
		}
		bob.add("userCertificate:", cert)
		carol := o.user("carol", "carol@lab.test", normal, o.userPassword)
		carol.add("altSecurityIdentities", "Kerberos:carol.ext@LAB.TEST")
		mallory := o.user("mallory", "mallory@lab.test", normal, o.userPassword)
		if cert, err = o.userCert("mallory"); err != nil {
			return err
		}
		mallory.add("userCertificate:", cert)
		eve := o.user("eve", "eve@lab.test", normal|uacNotDelegated, o.userPassword)
		dave := o.user("dave", "dave@lab.test", normal|uacAccountDisable, o.userPassword)
		frank := o.user("frank", "frank@lab.test", normal, o.userPassword)
		accounts = append(accounts, alice, bob, carol, mallory, eve, dave, frank)
	}
	for i := o.from; i <= o.to && !o.variants && !o.policy; i++ {
		n := fmt.Sprintf("user%04d", i)
		u := o.user(n, n+"@lab.test", uacNormalAccount|uacDontExpirePassword, o.generatedPassword)
		if cert, err := o.userCert(n); err == nil {
			u.add("userCertificate:", cert)
		}
		accounts = append(accounts, u)
	}
	for _, a := range accounts {
		if err := a.write(bw); err != nil {
			return err
		}
	}
	return bw.Flush()
}
