package safefile

import (
	"bytes"
	"encoding/pem"
	"errors"
	"os"
	"strings"
)

// checkKeyInside returns CheckPrivate's finding, with HoldsKey set and a
// fix that offers to take the key out first, when data, the content of the file
// path (fi its FileInfo), holds a PEM private key; else nil. The key's own
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
	e.Fix = "remove the private key from " + path + " (keep it in its own file, mode 0600), or " + e.Fix
	return e
}

// holdsPrivateKey reports whether data holds a PEM block whose type ends
// in "PRIVATE KEY" (PKCS #8, PKCS #1 "RSA", SEC 1 "EC", an encrypted PKCS
// #8 or an OpenSSH key; an encrypted key is refused too, as its passphrase
// can be guessed offline by whoever reads it).
func holdsPrivateKey(data []byte) bool {
	for rest := data; bytes.Contains(rest, []byte("PRIVATE KEY-----")); {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return false
		}
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			clear(b.Bytes)
			return true
		}
	}
	return false
}
