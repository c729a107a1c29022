package safefile

import (
	"bytes"
	"errors"
	"os"
)

// checkKeyInside returns CheckPrivate's finding, with HoldsKey set and a
// fix that offers to take the key out first, when data, the content of the file
// path (fi its FileInfo), holds a private key (holdsPrivateKey); else nil. The key's own
// file is checked twice (ReadPrivate's check and this one), which costs a
// few stats and keeps one rule: a key is private wherever it is.
func checkKeyInside(path string, fi os.FileInfo, data []byte) error {
	if !holdsPrivateKey(data) {
		return nil
	}
	err := CheckPrivate(path, fi)
	e, ok := errors.AsType[*ExposedError](err)
	if !ok {
		return err
	}
	e.HoldsKey = true
	if hasKeyBag(data) {
		e.Fix = "export " + path + " again without its key (openssl pkcs12 -export -nokeys; from Windows, the CA certificates alone), or " + e.Fix
	} else {
		e.Fix = "remove the private key from " + path + " (keep it in its own file, mode 0600), or " + e.Fix
	}
	return e
}

// holdsPrivateKey reports whether data holds a private key: a line that
// ends in "PRIVATE KEY-----" in any case (the BEGIN or the END line of a
// PKCS #8, PKCS #1 "RSA", SEC 1 "EC", encrypted PKCS #8 or OpenSSH key; an
// encrypted key is refused too, as its passphrase can be guessed offline
// by whoever reads it), or a PKCS #12 key bag (a PFX exported with its
// key, shrouded under a passcode that can be guessed offline as well).
// The armor's lines are looked for, not decoded blocks: a key is there for
// whoever reads the file whether or not a PEM parser takes it for one (a
// label in lower case, an END line cut off or naming another type, an
// indented block, text before BEGIN, a header the parser refuses: rvkey).
// A line that only names the words (a comment going on after them) is not
// a key.
func holdsPrivateKey(data []byte) bool {
	if hasKeyBag(data) {
		return true
	}
	const armor = "PRIVATE KEY-----"
	for rest := data; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		line = bytes.TrimRight(line, " \t\r")
		if len(line) >= len(armor) && bytes.EqualFold(line[len(line)-len(armor):], []byte(armor)) {
			return true
		}
	}
	return false
}

// hasKeyBag reports whether data, a PFX, holds a key bag.
func hasKeyBag(data []byte) bool {
	return bytes.Contains(data, oidKeyBag) || bytes.Contains(data, oidShroudedKeyBag)
}

// The DER of the PKCS #12 bag types that hold a key (RFC 7292 4.2.1 and
// 4.2.2, 1.2.840.113549.1.12.10.1.1 and .2): a PFX puts its key bags in an
// unencrypted content (the shrouded bag is encrypted itself), so they are
// seen without the passcode. The certificate bag (.3) is not one of them.
var (
	oidKeyBag         = []byte{0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x01}
	oidShroudedKeyBag = []byte{0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x02}
)
