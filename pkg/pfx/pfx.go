package pfx

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ErrIncorrectPassword is returned (wrapped; test with errors.Is) when the password does not
// open the file: the MAC does not match, or, in a file without a MAC, decryption yields
// garbage.
var ErrIncorrectPassword = errors.New("pfx: incorrect password")

// ErrMalformed is wrapped by every error about data that is not well-formed PKCS#12.
var ErrMalformed = errors.New("pfx: malformed PKCS#12 data")

// UnsupportedError reports a well-formed feature of PKCS#12 that this reader does not
// implement, such as an encryption algorithm.
type UnsupportedError struct {
	// Feature says what is unsupported, e.g. "content encryption algorithm".
	Feature string
	// OID is the object identifier of the unsupported algorithm or content type; nil when
	// the feature has none.
	OID asn1.ObjectIdentifier
}

// Error implements error.
func (e *UnsupportedError) Error() string {
	name := oidName(e.OID)
	if name == "" {
		return "pfx: unsupported " + e.Feature
	}
	return fmt.Sprintf("pfx: unsupported %s %s", e.Feature, name)
}

// Limits guarding against hostile input: a real PFX uses a few thousand iterations
// (openssl 2048, Windows 2000; NSS 600000) and nests safe contents at most once. One
// key derivation may take maxIterations, and all of a file's derivations together
// (the MAC for each password form tried, each encrypted ContentInfo) maxFileIterations:
// otherwise a file of many encrypted elements, each just under the first limit, would
// cost hours of CPU at every start and SIGHUP.
const (
	maxIterations     = 1 << 20
	maxFileIterations = 1 << 22
	maxNesting        = 4
)

// ErrNoMAC is returned (wrapped) for a file without a MAC (openssl pkcs12 -nomac). The MAC
// is what ties the file to its password: without one, anyone who can write the file can
// change the certificates it holds without knowing the password, and a wrong password is
// only noticed when decryption happens to give garbage. SEG's trust store is a
// password-protected PFX, and openssl and Windows always write a MAC, so such a file is
// refused rather than read with a warning.
var ErrNoMAC = errors.New("pfx: the file has no MAC (integrity check); export it again with one (openssl pkcs12 -export without -nomac; Windows always writes one)")

// budget is the iterations of key derivation a file may still spend.
type budget struct{ left int }

// spend takes n derivations of iterations each from the budget, refusing a single
// iteration count outside 1..maxIterations or a total above maxFileIterations.
func (b *budget) spend(iterations, n int) error {
	if iterations < 1 || iterations > maxIterations {
		return malformed("iteration count %d outside 1..%d", iterations, maxIterations)
	}
	if b.left < iterations*n {
		return malformed("key derivations in this file add up to more than %d iterations", maxFileIterations)
	}
	b.left -= iterations * n
	return nil
}

var (
	oidData             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidEnvelopedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}
	oidEncryptedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidCertBag          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
	oidSafeContentsBag  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 6}
	oidX509Certificate  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
	oidPBMAC1           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	tagExplicit0        = cbasn1.Tag(0).Constructed().ContextSpecific()
	tagImplicit0        = cbasn1.Tag(0).ContextSpecific()
	tagOctetConstructed = cbasn1.OCTET_STRING.Constructed()
)

// Decode returns the certificates held in the certificate bags of the PKCS#12 file data,
// opened with password. Key bags are skipped, so a PFX holding a key yields its certificates
// too. A file without certificates yields an empty slice and no error.
//
// The MAC is checked before anything is decrypted; a mismatch is ErrIncorrectPassword,
// a file without one ErrNoMAC. The password is encoded as RFC 7292 requires: a big-endian UTF-16
// string with two trailing NUL bytes for the MAC and the PKCS#12 PBE schemes, UTF-8 bytes for
// PBES2. Like openssl, an empty password also matches files made with no password at all,
// and a non-ASCII password also matches files from openssl 1.0, which took each UTF-8 byte
// for a character.
func Decode(data []byte, password string) ([]*x509.Certificate, error) {
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) {
		return nil, malformed("the file is PEM text, not a binary PKCS#12 file")
	}
	if isBase64PFX(data) {
		return nil, malformed("the file is base64 text, not a binary PKCS#12 file; decode it first (base64 -d)")
	}
	der, err := berToDER(data)
	if err != nil {
		return nil, err
	}
	in := cryptobyte.String(der)
	var pfx cryptobyte.String
	if !in.ReadASN1(&pfx, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, malformed("not a SEQUENCE")
	}
	var version int
	if !pfx.ReadASN1Integer(&version) {
		return nil, malformed("reading the version")
	}
	if version != 3 {
		return nil, malformed("version %d, want 3", version)
	}
	authSafe, err := readAuthSafe(&pfx)
	if err != nil {
		return nil, err
	}
	pw := passwords(password)
	b := &budget{left: maxFileIterations}
	if pfx.Empty() {
		return nil, ErrNoMAC
	}
	var macData cryptobyte.String
	if !pfx.ReadASN1(&macData, cbasn1.SEQUENCE) || !pfx.Empty() {
		return nil, malformed("reading MacData")
	}
	bmp, err := verifyMAC(macData, authSafe, pw, b)
	if err != nil {
		return nil, err
	}
	pw.bmp = [][]byte{bmp}
	d := decoder{pw: pw, budget: b}
	if err := d.authenticatedSafe(authSafe); err != nil {
		return nil, err
	}
	return d.certs, nil
}

// readAuthSafe reads the authSafe ContentInfo and returns the DER of the AuthenticatedSafe
// it carries, the bytes the MAC covers.
func readAuthSafe(pfx *cryptobyte.String) ([]byte, error) {
	var ci cryptobyte.String
	var ct asn1.ObjectIdentifier
	if !pfx.ReadASN1(&ci, cbasn1.SEQUENCE) || !ci.ReadASN1ObjectIdentifier(&ct) {
		return nil, malformed("reading the authSafe ContentInfo")
	}
	switch {
	case ct.Equal(oidData):
	case ct.Equal(oidSignedData):
		return nil, &UnsupportedError{Feature: "public-key integrity mode", OID: ct}
	default:
		return nil, &UnsupportedError{Feature: "authSafe content type", OID: ct}
	}
	var content cryptobyte.String
	if !ci.ReadASN1(&content, tagExplicit0) || !ci.Empty() {
		return nil, malformed("reading the authSafe content")
	}
	octets, ok := readOctets(&content, cbasn1.OCTET_STRING, tagOctetConstructed)
	if !ok || !content.Empty() {
		return nil, malformed("reading the authSafe OCTET STRING")
	}
	return octets, nil
}

// decoder walks the AuthenticatedSafe and collects certificates.
type decoder struct {
	pw     passwordForms
	budget *budget
	certs  []*x509.Certificate
}

func (d *decoder) authenticatedSafe(ber []byte) error {
	der, err := berToDER(ber)
	if err != nil {
		return err
	}
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return malformed("reading the AuthenticatedSafe")
	}
	for i := 0; !seq.Empty(); i++ {
		var ci, content cryptobyte.String
		var ct asn1.ObjectIdentifier
		if !seq.ReadASN1(&ci, cbasn1.SEQUENCE) || !ci.ReadASN1ObjectIdentifier(&ct) ||
			!ci.ReadASN1(&content, tagExplicit0) || !ci.Empty() {
			return malformed("reading ContentInfo %d of the AuthenticatedSafe", i)
		}
		switch {
		case ct.Equal(oidData):
			octets, ok := readOctets(&content, cbasn1.OCTET_STRING, tagOctetConstructed)
			if !ok || !content.Empty() {
				return malformed("reading the data of ContentInfo %d", i)
			}
			if err := d.safeContents(octets, 0); err != nil {
				return err
			}
		case ct.Equal(oidEncryptedData):
			plain, err := d.encryptedData(content, i)
			if err != nil {
				return err
			}
			if err := d.safeContents(plain, 0); err != nil {
				return err
			}
		case ct.Equal(oidEnvelopedData):
			return &UnsupportedError{Feature: "public-key privacy mode", OID: ct}
		default:
			return &UnsupportedError{Feature: "content type", OID: ct}
		}
	}
	return nil
}

// encryptedData decrypts an EncryptedData (RFC 5652 section 8) and returns its content.
func (d *decoder) encryptedData(content cryptobyte.String, i int) ([]byte, error) {
	var ed, eci, alg cryptobyte.String
	var version int
	var ct asn1.ObjectIdentifier
	if !content.ReadASN1(&ed, cbasn1.SEQUENCE) || !content.Empty() ||
		!ed.ReadASN1Integer(&version) || !ed.ReadASN1(&eci, cbasn1.SEQUENCE) ||
		!eci.ReadASN1ObjectIdentifier(&ct) || !eci.ReadASN1(&alg, cbasn1.SEQUENCE) {
		return nil, malformed("reading the EncryptedData of ContentInfo %d", i)
	}
	// ed may go on with [1] unprotectedAttrs, which we ignore.
	if !ct.Equal(oidData) {
		return nil, &UnsupportedError{Feature: "encrypted content type", OID: ct}
	}
	if eci.Empty() {
		return nil, malformed("ContentInfo %d: EncryptedData without content", i)
	}
	ciphertext, ok := readOctets(&eci, tagImplicit0, tagExplicit0)
	if !ok || !eci.Empty() {
		return nil, malformed("reading the encrypted content of ContentInfo %d", i)
	}
	plain, err := decrypt(alg, ciphertext, d.pw, d.budget)
	if err != nil {
		if errors.Is(err, errBadPadding) {
			return nil, malformed("ContentInfo %d: decryption gave bad padding although the MAC matched", i)
		}
		return nil, fmt.Errorf("pfx: decrypting ContentInfo %d: %w", i, err)
	}
	return plain, nil
}

// safeContents reads a SafeContents and collects the certificates of its certificate bags,
// descending into nested SafeContents bags.
func (d *decoder) safeContents(ber []byte, depth int) error {
	if depth > maxNesting {
		return malformed("safe contents nested deeper than %d", maxNesting)
	}
	der, err := berToDER(ber)
	if err != nil {
		return err
	}
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return malformed("reading SafeContents")
	}
	for !seq.Empty() {
		var bag, value cryptobyte.String
		var bagID asn1.ObjectIdentifier
		if !seq.ReadASN1(&bag, cbasn1.SEQUENCE) || !bag.ReadASN1ObjectIdentifier(&bagID) ||
			!bag.ReadASN1(&value, tagExplicit0) {
			return malformed("reading a SafeBag")
		}
		// bag may go on with a SET of attributes (friendlyName, localKeyId, ...), unused here.
		switch {
		case bagID.Equal(oidCertBag):
			if err := d.certBag(value); err != nil {
				return err
			}
		case bagID.Equal(oidSafeContentsBag):
			// The value is itself a SafeContents SEQUENCE.
			if err := d.safeContents(value, depth+1); err != nil {
				return err
			}
		default:
			// Key, shrouded key, CRL and secret bags carry nothing for a trust store.
		}
	}
	return nil
}

func (d *decoder) certBag(value cryptobyte.String) error {
	var cb, certValue cryptobyte.String
	var certID asn1.ObjectIdentifier
	if !value.ReadASN1(&cb, cbasn1.SEQUENCE) || !value.Empty() ||
		!cb.ReadASN1ObjectIdentifier(&certID) || !cb.ReadASN1(&certValue, tagExplicit0) {
		return malformed("reading a CertBag")
	}
	if !certID.Equal(oidX509Certificate) {
		// sdsiCertificate and others: not X.509, nothing a TLS stack can use.
		return nil
	}
	der, ok := readOctets(&certValue, cbasn1.OCTET_STRING, tagOctetConstructed)
	if !ok || !certValue.Empty() {
		return malformed("reading the certificate of CertBag %d", len(d.certs))
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("%w: certificate %d: %w", ErrMalformed, len(d.certs), err)
	}
	d.certs = append(d.certs, cert)
	return nil
}

// readOctets reads an OCTET STRING with the given primitive tag, or its BER constructed
// form whose primitive OCTET STRING segments are concatenated: NSS and Java write the
// encrypted content, an IMPLICIT [0] OCTET STRING that berToDER cannot recognise, in
// segments.
func readOctets(s *cryptobyte.String, primitive, constructed cbasn1.Tag) ([]byte, bool) {
	var out cryptobyte.String
	if s.PeekASN1Tag(primitive) {
		if !s.ReadASN1(&out, primitive) {
			return nil, false
		}
		return out, true
	}
	if !s.ReadASN1(&out, constructed) {
		return nil, false
	}
	var joined []byte
	for !out.Empty() {
		var seg cryptobyte.String
		if !out.ReadASN1(&seg, cbasn1.OCTET_STRING) {
			return nil, false
		}
		joined = append(joined, seg...)
	}
	return joined, true
}

// isBase64PFX reports whether data is base64 text of something that starts like a PFX, as
// key vaults and some web consoles hand PFX files out.
func isBase64PFX(data []byte) bool {
	compact := make([]byte, 0, len(data))
	for _, c := range data {
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/', c == '=':
			compact = append(compact, c)
		default:
			return false
		}
	}
	if len(compact) < 16 {
		return false
	}
	dec, err := base64.StdEncoding.DecodeString(string(compact))
	return err == nil && len(dec) > 0 && dec[0] == 0x30
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
