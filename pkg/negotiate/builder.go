package negotiate

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/common"
	"github.com/jcmturner/gokrb5/v8/crypto/etype"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// GSS-API context flags carried in the authenticator checksum (RFC 4121
// section 4.1.1.1).
const (
	FlagDeleg    uint32 = 1
	FlagMutual   uint32 = 2
	FlagReplay   uint32 = 4
	FlagSequence uint32 = 8
	FlagConf     uint32 = 16
	FlagInteg    uint32 = 32

	// DefaultFlags are the flags a browser asks for: mutual authentication,
	// integrity and confidentiality (no delegation).
	DefaultFlags = FlagMutual | FlagInteg | FlagConf
)

// HeaderPrefix starts every header value Header returns.
const HeaderPrefix = "Negotiate "

// gssChecksumType is the authenticator checksum type of the Kerberos GSS
// mechanism (RFC 4121 section 4.1.1).
const gssChecksumType = 0x8003

var (
	// spnegoOID is 1.3.6.1.5.5.2 and krb5OID is 1.2.840.113554.1.2.2, each
	// as a full DER OBJECT IDENTIFIER.
	spnegoOID = []byte{0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02}
	krb5OID   = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02}
)

// Options tune a Builder.
type Options struct {
	// Flags are the GSS-API context flags in the authenticator checksum.
	// Zero means DefaultFlags. FlagMutual also sets the AP-REQ's
	// mutual-required option; FlagDeleg is not supported (it needs a
	// forwarded TGT).
	Flags uint32
	// Now returns the current time for the authenticator. Nil means
	// time.Now.
	Now func() time.Time
}

// Builder makes Negotiate tokens for one ticket. It is safe for concurrent
// use and holds the session key: never log it.
type Builder struct {
	now   func() time.Time
	etype int32
	fixed []byte // authenticator content up to and including the checksum
	apPre []byte // AP-REQ content up to and including [3] ticket

	// AES-CTS-HMAC-SHA1 fast path: keys derived once for key usage 11.
	block cipher.Block
	macs  sync.Pool // of *aesState, its HMAC keyed with Ki
	// scratch lends Header a buffer for the token and its base64 (*[]byte).
	scratch sync.Pool
	// prefixes caches the base64 of the fixed head of a token per token
	// length (int → *encoded); nPrefixes counts stores.
	prefixes  sync.Map
	nPrefixes atomic.Int32
	// generic path for other etypes.
	et  etype.EType
	key types.EncryptionKey
}

// New prepares a Builder for a ticket (DER, [APPLICATION 1]) with its
// session key and the client name and realm exactly as the KDC's reply gave
// them.
func New(ticketDER []byte, sessionKey types.EncryptionKey, cname types.PrincipalName, crealm string, opts Options) (*Builder, error) {
	var tkt messages.Ticket
	rest, err := asn1.UnmarshalWithParams(ticketDER, &tkt, "application,explicit,tag:1")
	if err != nil {
		return nil, fmt.Errorf("negotiate: ticket does not decode: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("negotiate: trailing bytes after the ticket")
	}
	if len(cname.NameString) == 0 || crealm == "" {
		return nil, errors.New("negotiate: client name and realm are required")
	}
	et, err := crypto.GetEtype(sessionKey.KeyType)
	if err != nil {
		return nil, fmt.Errorf("negotiate: session key: %w", err)
	}
	if len(sessionKey.KeyValue) != et.GetKeyByteSize() {
		return nil, fmt.Errorf("negotiate: session key is %d bytes, etype %d needs %d", len(sessionKey.KeyValue), sessionKey.KeyType, et.GetKeyByteSize())
	}
	flags := opts.Flags
	if flags == 0 {
		flags = DefaultFlags
	}
	if flags&FlagDeleg != 0 {
		return nil, errors.New("negotiate: delegation flag is not supported")
	}
	b := &Builder{now: opts.Now, etype: sessionKey.KeyType, et: et, key: sessionKey}
	b.scratch.New = func() any { return new([]byte) }
	if b.now == nil {
		b.now = time.Now
	}
	if err := b.prepare(ticketDER, cname, crealm, flags); err != nil {
		return nil, err
	}
	if sessionKey.KeyType == etypeID.AES128_CTS_HMAC_SHA1_96 || sessionKey.KeyType == etypeID.AES256_CTS_HMAC_SHA1_96 {
		ke, err := et.DeriveKey(sessionKey.KeyValue, common.GetUsageKe(keyusage.AP_REQ_AUTHENTICATOR))
		if err != nil {
			return nil, fmt.Errorf("negotiate: derive encryption key: %w", err)
		}
		ki, err := et.DeriveKey(sessionKey.KeyValue, common.GetUsageKi(keyusage.AP_REQ_AUTHENTICATOR))
		if err != nil {
			return nil, fmt.Errorf("negotiate: derive integrity key: %w", err)
		}
		if b.block, err = aes.NewCipher(ke); err != nil {
			return nil, fmt.Errorf("negotiate: %w", err)
		}
		hf := et.GetHashFunc()
		b.macs.New = func() any { return &aesState{mac: hmac.New(hf, ki)} }
	}
	return b, nil
}

// prepare encodes the parts that do not change per token.
func (b *Builder) prepare(ticketDER []byte, cname types.PrincipalName, crealm string, flags uint32) error {
	cn, err := asn1.Marshal(cname)
	if err != nil {
		return fmt.Errorf("negotiate: encode client name: %w", err)
	}
	// Checksum value: Lgth=16, Bnd (16 zero bytes), Flags, all little-endian.
	var sum [24]byte
	binary.LittleEndian.PutUint32(sum[0:4], 16)
	binary.LittleEndian.PutUint32(sum[20:24], flags)
	cksumSeq := make([]byte, 0, 40)
	cksumSeq = appendTL(cksumSeq, 0xa0, 5)
	cksumSeq = appendInt(cksumSeq, gssChecksumType)
	cksumSeq = appendTL(cksumSeq, 0xa1, tlvLen(len(sum)))
	cksumSeq = appendTL(cksumSeq, 0x04, len(sum))
	cksumSeq = append(cksumSeq, sum[:]...)

	f := make([]byte, 0, 64+len(crealm)+len(cn))
	f = appendTL(f, 0xa0, 3)
	f = appendInt(f, 5) // authenticator-vno
	f = appendTL(f, 0xa1, tlvLen(len(crealm)))
	f = appendTL(f, 0x1b, len(crealm)) // GeneralString
	f = append(f, crealm...)
	f = appendTL(f, 0xa2, len(cn))
	f = append(f, cn...)
	f = appendTL(f, 0xa3, tlvLen(len(cksumSeq)))
	f = appendTL(f, 0x30, len(cksumSeq))
	f = append(f, cksumSeq...)
	b.fixed = f

	// AP-REQ options: a 32-bit BIT STRING; mutual-required is bit 2.
	var apOpts byte
	if flags&FlagMutual != 0 {
		apOpts = 0x20
	}
	p := make([]byte, 0, 32+len(ticketDER))
	p = appendTL(p, 0xa0, 3)
	p = appendInt(p, 5) // pvno
	p = appendTL(p, 0xa1, 3)
	p = appendInt(p, 14) // KRB_AP_REQ
	p = appendTL(p, 0xa2, 7)
	p = append(p, 0x03, 0x05, 0x00, apOpts, 0x00, 0x00, 0x00)
	p = appendTL(p, 0xa3, len(ticketDER))
	p = append(p, ticketDER...)
	b.apPre = p
	return nil
}

// Header returns "Negotiate <base64 token>" with a fresh authenticator.
// The token is built in a pooled scratch buffer and copied once into the
// exactly sized string: one allocation per header. Everything up to the
// end of the ticket is the same in every token of one length, so its
// base64 (cut at a multiple of 3 bytes, where base64 output concatenates)
// is kept per token length and only the authenticator's part is encoded
// per request: with the lab's 1.4 KB tickets that was most of the cost.
func (b *Builder) Header() (string, error) {
	sp := b.scratch.Get().(*[]byte)
	defer b.scratch.Put(sp)
	tok, fixed, err := b.appendToken((*sp)[:0])
	if err != nil {
		return "", err
	}
	k := fixed - fixed%3
	pre := b.encodedPrefix(len(tok), tok[:k])
	n := base64.StdEncoding.EncodedLen(len(tok) - k)
	buf := slices.Grow(tok, n)
	enc := buf[len(tok) : len(tok)+n]
	base64.StdEncoding.Encode(enc, tok[k:])
	*sp = buf[:0]
	var h strings.Builder
	h.Grow(len(HeaderPrefix) + len(pre) + n)
	h.WriteString(HeaderPrefix)
	h.WriteString(pre)
	h.Write(enc)
	return h.String(), nil
}

// encodedPrefix returns the base64 of raw, the first bytes of a token of
// total length n, from the cache when the same bytes were encoded before.
func (b *Builder) encodedPrefix(n int, raw []byte) string {
	if v, ok := b.prefixes.Load(n); ok {
		if p := v.(*encoded); bytes.Equal(p.raw, raw) {
			return p.b64
		}
	}
	p := &encoded{raw: slices.Clone(raw), b64: base64.StdEncoding.EncodeToString(raw)}
	if b.nPrefixes.Add(1) <= maxPrefixes {
		b.prefixes.Store(n, p)
	}
	return p.b64
}

// encoded is a token prefix and its base64.
type encoded struct {
	raw []byte
	b64 string
}

// maxPrefixes bounds the prefix cache: token lengths vary by a few bytes
// (the lengths of cusec and the sequence number), so a handful are used.
const maxPrefixes = 64

// Token returns a SPNEGO NegTokenInit (GSS InitialContextToken) carrying an
// AP-REQ with a fresh authenticator: the current time and a random sequence
// number, encrypted with the session key (key usage 11).
func (b *Builder) Token() ([]byte, error) {
	t, _, err := b.appendToken(nil)
	return t, err
}

// appendToken appends a fresh token to dst. The sizes are computed first, so
// the whole token is written in one pass; with AES the authenticator is
// encoded, checksummed and encrypted in place inside the token. fixed is the
// length of the token's head that depends only on the token's length: the
// framing up to the end of the ticket.
func (b *Builder) appendToken(dst []byte) (tok []byte, fixed int, err error) {
	now := b.now().UTC()
	const conf = aes.BlockSize
	// One read for the sequence number and the confounder.
	var rnd [4 + conf]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, 0, fmt.Errorf("negotiate: random: %w", err)
	}
	seq := int64(binary.BigEndian.Uint32(rnd[:4]) & 0x3fffffff)
	cusec := int64(now.Nanosecond() / 1000)
	content := len(b.fixed) + tlvLen(tlvLen(intLen(cusec))) + tlvLen(tlvLen(15)) + tlvLen(tlvLen(intLen(seq)))
	authLen := tlvLen(tlvLen(content)) // [APPLICATION 2] SEQUENCE

	fast := b.block != nil
	var generic []byte
	cipherLen := conf + authLen + 12 // confounder, authenticator, HMAC-SHA1-96
	if !fast {
		plain := appendAuthenticator(make([]byte, 0, authLen), b.fixed, content, now, cusec, seq)
		_, ct, err := b.et.EncryptMessage(b.key.KeyValue, plain, keyusage.AP_REQ_AUTHENTICATOR)
		if err != nil {
			return nil, 0, fmt.Errorf("negotiate: encrypt authenticator: %w", err)
		}
		generic, cipherLen = ct, len(ct)
	}

	// EncryptedData ::= SEQUENCE { etype [0] Int32, cipher [2] OCTET STRING }
	etLen := tlvLen(intLen(int64(b.etype)))
	encSeq := tlvLen(etLen) + tlvLen(tlvLen(cipherLen))
	apContent := len(b.apPre) + tlvLen(tlvLen(encSeq))
	apReq := tlvLen(tlvLen(apContent))             // [APPLICATION 14] SEQUENCE
	krbTok := len(krb5OID) + 2 + apReq             // OID, TOK_ID 01 00, AP-REQ
	mechTok := tlvLen(krbTok)                      // [APPLICATION 0]
	mechTypes := tlvLen(tlvLen(len(krb5OID)))      // [0] SEQUENCE OF OID
	negInit := mechTypes + tlvLen(tlvLen(mechTok)) // + [2] OCTET STRING
	inner := len(spnegoOID) + tlvLen(tlvLen(negInit))
	total := tlvLen(inner)

	t := slices.Grow(dst, total+8) // +8: HMAC-SHA1 is 20 bytes before the cut to 12
	start := len(t)
	t = appendTL(t, 0x60, inner)
	t = append(t, spnegoOID...)
	t = appendTL(t, 0xa0, tlvLen(negInit))
	t = appendTL(t, 0x30, negInit)
	t = appendTL(t, 0xa0, tlvLen(len(krb5OID)))
	t = appendTL(t, 0x30, len(krb5OID))
	t = append(t, krb5OID...)
	t = appendTL(t, 0xa2, tlvLen(mechTok))
	t = appendTL(t, 0x04, mechTok)
	t = appendTL(t, 0x60, krbTok)
	t = append(t, krb5OID...)
	t = append(t, 0x01, 0x00)
	t = appendTL(t, 0x6e, tlvLen(apContent))
	t = appendTL(t, 0x30, apContent)
	t = append(t, b.apPre...)
	fixed = len(t) - start
	t = appendTL(t, 0xa4, tlvLen(encSeq))
	t = appendTL(t, 0x30, encSeq)
	t = appendTL(t, 0xa0, etLen)
	t = appendInt(t, int64(b.etype))
	t = appendTL(t, 0xa2, tlvLen(cipherLen))
	t = appendTL(t, 0x04, cipherLen)
	if fast {
		// RFC 3962: HMAC over confounder|plaintext, then CBC-CTS in place.
		c := len(t)
		t = append(t, rnd[4:]...)
		t = appendAuthenticator(t, b.fixed, content, now, cusec, seq)
		st := b.macs.Get().(*aesState)
		mac := st.mac
		mac.Reset()
		mac.Write(t[c:])
		// The 20-byte HMAC-SHA1 goes after the plaintext; encryption
		// covers only the plaintext, and the MAC is cut to 96 bits.
		end := len(t)
		t = mac.Sum(t)
		encryptCTS(b.block, t[c:end], &st.blocks)
		b.macs.Put(st)
		t = t[:end+12]
	} else {
		t = append(t, generic...)
	}
	if len(t)-start != total {
		return nil, 0, fmt.Errorf("negotiate: internal error: token is %d bytes, computed %d", len(t)-start, total)
	}
	return t, fixed, nil
}

// appendAuthenticator appends the DER authenticator (fixed part, cusec,
// ctime, seq-number) whose SEQUENCE content is content bytes long.
func appendAuthenticator(buf, fixed []byte, content int, now time.Time, cusec, seq int64) []byte {
	buf = appendTL(buf, 0x62, tlvLen(content))
	buf = appendTL(buf, 0x30, content)
	buf = append(buf, fixed...)
	buf = appendTL(buf, 0xa4, tlvLen(intLen(cusec)))
	buf = appendInt(buf, cusec)
	buf = appendTL(buf, 0xa5, tlvLen(15))
	buf = appendTL(buf, 0x18, 15)
	y, mo, d := now.Date()
	h, mi, s := now.Clock()
	buf = appendGeneralizedTime(buf, y, int(mo), d, h, mi, s)
	buf = appendTL(buf, 0xa7, tlvLen(intLen(seq)))
	return appendInt(buf, seq)
}

// aesState is one token's HMAC and CTS working blocks, pooled: blocks
// handed to cipher.Block (an interface) would otherwise escape to the heap.
type aesState struct {
	mac    hash.Hash
	blocks [3][aes.BlockSize]byte
}

// encryptCTS encrypts p in place with AES-CBC and ciphertext stealing as
// RFC 3962 uses it (zero IV; the last two blocks swapped; len(p) >= 16).
func encryptCTS(block cipher.Block, p []byte, w *[3][aes.BlockSize]byte) {
	const bs = aes.BlockSize
	n := len(p)
	*w = [3][bs]byte{}
	iv, cn1, pn := &w[0], &w[1], &w[2]
	if n == bs {
		block.Encrypt(p, p)
		return
	}
	// Number of blocks, the last one possibly partial.
	m := (n + bs - 1) / bs
	// CBC over all full blocks before the last two.
	for i := 0; i < m-2; i++ {
		blk := p[i*bs : (i+1)*bs]
		subtle(blk, iv[:])
		block.Encrypt(blk, blk)
		copy(iv[:], blk)
	}
	// The last two blocks: Pn-1 (full) and Pn (r bytes, 1..16).
	pn1 := p[(m-2)*bs : (m-1)*bs]
	r := n - (m-1)*bs
	copy(cn1[:], pn1)
	subtle(cn1[:], iv[:])
	block.Encrypt(cn1[:], cn1[:]) // E(Pn-1 xor C(n-2))
	copy(pn[:], p[(m-1)*bs:])     // Pn zero-padded
	subtle(pn[:], cn1[:])
	block.Encrypt(pn[:], pn[:]) // Cn = E(pad(Pn) xor Cn-1')
	copy(p[(m-2)*bs:], pn[:])   // full block Cn first
	copy(p[(m-1)*bs:], cn1[:r]) // then the head of Cn-1'
}

// subtle xors src into dst (both one block).
func subtle(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}
