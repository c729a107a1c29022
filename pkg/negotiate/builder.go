package negotiate

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1-96 is the integrity check of the AES Kerberos etypes (RFC 3962)
	"encoding"
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

	"github.com/segmesh/segmesh/pkg/krbtime"
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
	// Scratch lends Header its working buffer. Nil means a Scratch of the
	// Builder's own; one Scratch shared by many Builders (one per user)
	// keeps fewer, warmer buffers.
	Scratch *Scratch
}

// Scratch is a pool of Header's working buffers (token tail and its
// base64), safe for concurrent use by many Builders. The zero value is
// ready to use.
type Scratch struct{ p, aes sync.Pool }

// aesState returns a pooled HMAC-SHA1 and CTS working state.
func (s *Scratch) aesState() *aesState {
	if v, ok := s.aes.Get().(*aesState); ok {
		return v
	}
	return &aesState{inner: sha1.New(), outer: sha1.New()}
}

func (s *Scratch) get() *[]byte {
	if v, ok := s.p.Get().(*[]byte); ok {
		return v
	}
	return new([]byte)
}

func (s *Scratch) put(b *[]byte) { s.p.Put(b) }

// Builder makes Negotiate tokens for one ticket. It is safe for concurrent
// use and holds the session key: never log it.
type Builder struct {
	now func() time.Time
	// stamp makes every authenticator's (ctime, cusec) later than the one
	// before: acceptors' replay caches refuse a repeat.
	stamp krbtime.Stamper
	etype int32
	fixed []byte // authenticator content up to and including the checksum
	// bnd is the offset in fixed of the checksum's 16-byte channel-binding
	// field, zero in fixed and written per token.
	bnd   int
	apPre []byte // AP-REQ content up to and including [3] ticket

	// AES-CTS-HMAC-SHA1 fast path: keys derived once for key usage 11.
	block cipher.Block
	// ipad and opad are the marshalled SHA-1 states after absorbing
	// Ki^ipad and Ki^opad (RFC 2104): HMAC per token restores them into a
	// pooled digest, as crypto/hmac's Reset does, so no per-key state is
	// pooled (with a Builder per user, per-key pools are mostly cold).
	ipad, opad []byte
	// scratch lends Header a buffer for the token and its base64.
	scratch *Scratch
	// prefixes caches the base64 of a token's head per token length
	// (int → string); nPrefixes counts stores.
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
	if sessionKey.KeyType == etypeID.AES256_CTS_HMAC_SHA384_192 {
		// gokrb5 v8.4.4 gives etype 20 a 24-byte key (RFC 8009: 32): every
		// token would fail. The ticket role never offers it (pkg/s4u).
		return nil, errors.New("negotiate: session key etype 20 (aes256-cts-hmac-sha384-192) is not supported (gokrb5 implements it with the wrong key size); the KDC should issue 18 or 17")
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
	b := &Builder{now: opts.Now, etype: sessionKey.KeyType, et: et, key: sessionKey, scratch: opts.Scratch}
	if b.scratch == nil {
		b.scratch = new(Scratch)
	}
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
		if b.ipad, b.opad, err = hmacStates(ki); err != nil {
			return nil, fmt.Errorf("negotiate: %w", err)
		}
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
	b.bnd = len(f) - len(sum) + 4 // after Lgth

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
// Everything up to the end of the ticket (the head) is the same in every
// token of one length, and a token's length takes a handful of values (the
// DER lengths of cusec and the sequence number). So the head's base64, cut
// at a multiple of 3 bytes where base64 output concatenates, is kept per
// token length, and per request only the authenticator's part (~150 bytes)
// is built and encoded, in a pooled scratch buffer, then copied once with
// the cached part into the exactly sized string: one allocation. With the
// lab's 1.4 KB tickets this avoids encoding and touching ~3 KB per request.
func (b *Builder) Header() (string, error) { return b.HeaderBound(Binding{}) }

// HeaderBound is Header with the channel binding cb in the authenticator's
// checksum (TLSServerEndPoint of the connection that carries the request, for
// Exchange's Extended Protection); the zero Binding is no binding.
func (b *Builder) HeaderBound(cb Binding) (string, error) {
	p, err := b.plan(cb)
	if err != nil {
		return "", err
	}
	return b.header(&p)
}

// header encodes the token of plan p as a header value.
func (b *Builder) header(p *tokenPlan) (string, error) {
	var err error
	fixed := p.total - p.tailLen()
	k := fixed - fixed%3
	sp := b.scratch.get()
	defer b.scratch.put(sp)
	t := (*sp)[:0]
	var pre string
	if v, ok := b.prefixes.Load(p.total); ok {
		pre = v.(string)
		t = append(t, b.apPre[len(b.apPre)-(fixed-k):]...)
		if t, err = b.appendTail(t, p); err != nil {
			return "", err
		}
	} else {
		if t, err = b.appendTail(b.appendHead(t, p), p); err != nil {
			return "", err
		}
		if len(t) != p.total {
			return "", fmt.Errorf("negotiate: internal error: token is %d bytes, computed %d", len(t), p.total)
		}
		pre = base64.StdEncoding.EncodeToString(t[:k])
		if b.nPrefixes.Add(1) <= maxPrefixes {
			b.prefixes.Store(p.total, pre)
		}
		t = t[k:]
	}
	n := base64.StdEncoding.EncodedLen(len(t))
	buf := slices.Grow(t, n)
	enc := buf[len(t) : len(t)+n]
	base64.StdEncoding.Encode(enc, t)
	*sp = buf[:0]
	var h strings.Builder
	h.Grow(len(HeaderPrefix) + len(pre) + n)
	h.WriteString(HeaderPrefix)
	h.WriteString(pre)
	h.Write(enc)
	return h.String(), nil
}

// maxPrefixes bounds the cache of encoded heads; a handful of token lengths
// occur.
const maxPrefixes = 64

// Token returns a SPNEGO NegTokenInit (GSS InitialContextToken) carrying an
// AP-REQ with a fresh authenticator: the current time (moved on by a
// microsecond when it would not be later than the Builder's previous one)
// and a random sequence number, encrypted with the session key (key usage
// 11).
func (b *Builder) Token() ([]byte, error) { return b.TokenBound(Binding{}) }

// TokenBound is Token with the channel binding cb (see HeaderBound).
func (b *Builder) TokenBound(cb Binding) ([]byte, error) {
	p, err := b.plan(cb)
	if err != nil {
		return nil, err
	}
	t, err := b.appendTail(b.appendHead(make([]byte, 0, p.total+8), &p), &p)
	if err != nil {
		return nil, err
	}
	if len(t) != p.total {
		return nil, fmt.Errorf("negotiate: internal error: token is %d bytes, computed %d", len(t), p.total)
	}
	return t, nil
}

// tokenPlan is one token's fresh values and every length, computed before
// anything is written.
type tokenPlan struct {
	cb                                                               Binding
	now                                                              time.Time
	seq, cusec                                                       int64
	confounder                                                       [aes.BlockSize]byte
	content                                                          int    // authenticator SEQUENCE content
	cipherLen                                                        int    // the encrypted authenticator
	generic                                                          []byte // the encrypted authenticator of a non-AES key
	etLen, encSeq, apContent, krbTok, mechTok, negInit, inner, total int
}

// tailLen is the length of the token after the ticket: [4] EncryptedData.
func (p *tokenPlan) tailLen() int { return tlvLen(tlvLen(p.encSeq)) }

// plan draws the fresh values (time, sequence number, confounder) and
// computes the lengths; for non-AES keys it encrypts the authenticator.
func (b *Builder) plan(cb Binding) (tokenPlan, error) {
	p := tokenPlan{cb: cb, now: b.stamp.Next(b.now()).UTC()}
	// One read for the sequence number and the confounder.
	var rnd [4 + aes.BlockSize]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return p, fmt.Errorf("negotiate: random: %w", err)
	}
	copy(p.confounder[:], rnd[4:])
	p.seq = int64(binary.BigEndian.Uint32(rnd[:4]) & 0x3fffffff)
	p.cusec = int64(p.now.Nanosecond() / 1000)
	p.content = len(b.fixed) + tlvLen(tlvLen(intLen(p.cusec))) + tlvLen(tlvLen(15)) + tlvLen(tlvLen(intLen(p.seq)))
	authLen := tlvLen(tlvLen(p.content))       // [APPLICATION 2] SEQUENCE
	p.cipherLen = aes.BlockSize + authLen + 12 // confounder, authenticator, HMAC-SHA1-96
	if b.block == nil {
		plain := b.appendAuthenticator(make([]byte, 0, authLen), &p)
		_, ct, err := b.et.EncryptMessage(b.key.KeyValue, plain, keyusage.AP_REQ_AUTHENTICATOR)
		if err != nil {
			return p, fmt.Errorf("negotiate: encrypt authenticator: %w", err)
		}
		p.generic, p.cipherLen = ct, len(ct)
	}
	// EncryptedData ::= SEQUENCE { etype [0] Int32, cipher [2] OCTET STRING }
	p.etLen = tlvLen(intLen(int64(b.etype)))
	p.encSeq = tlvLen(p.etLen) + tlvLen(tlvLen(p.cipherLen))
	p.apContent = len(b.apPre) + tlvLen(tlvLen(p.encSeq))
	apReq := tlvLen(tlvLen(p.apContent))              // [APPLICATION 14] SEQUENCE
	p.krbTok = len(krb5OID) + 2 + apReq               // OID, TOK_ID 01 00, AP-REQ
	p.mechTok = tlvLen(p.krbTok)                      // [APPLICATION 0]
	mechTypes := tlvLen(tlvLen(len(krb5OID)))         // [0] SEQUENCE OF OID
	p.negInit = mechTypes + tlvLen(tlvLen(p.mechTok)) // + [2] OCTET STRING
	p.inner = len(spnegoOID) + tlvLen(tlvLen(p.negInit))
	p.total = tlvLen(p.inner)
	return p, nil
}

// appendHead appends the token up to and including the ticket: the
// SPNEGO and GSS framing and the AP-REQ's fixed fields. It depends only on
// the token's length.
func (b *Builder) appendHead(t []byte, p *tokenPlan) []byte {
	t = slices.Grow(t, p.total+8) // +8: HMAC-SHA1 is 20 bytes before the cut to 12
	t = appendTL(t, 0x60, p.inner)
	t = append(t, spnegoOID...)
	t = appendTL(t, 0xa0, tlvLen(p.negInit))
	t = appendTL(t, 0x30, p.negInit)
	t = appendTL(t, 0xa0, tlvLen(len(krb5OID)))
	t = appendTL(t, 0x30, len(krb5OID))
	t = append(t, krb5OID...)
	t = appendTL(t, 0xa2, tlvLen(p.mechTok))
	t = appendTL(t, 0x04, p.mechTok)
	t = appendTL(t, 0x60, p.krbTok)
	t = append(t, krb5OID...)
	t = append(t, 0x01, 0x00)
	t = appendTL(t, 0x6e, tlvLen(p.apContent))
	t = appendTL(t, 0x30, p.apContent)
	return append(t, b.apPre...)
}

// appendTail appends [4] EncryptedData with the authenticator. With AES the
// authenticator is encoded, checksummed and encrypted in place.
func (b *Builder) appendTail(t []byte, p *tokenPlan) ([]byte, error) {
	t = slices.Grow(t, p.tailLen()+8)
	t = appendTL(t, 0xa4, tlvLen(p.encSeq))
	t = appendTL(t, 0x30, p.encSeq)
	t = appendTL(t, 0xa0, p.etLen)
	t = appendInt(t, int64(b.etype))
	t = appendTL(t, 0xa2, tlvLen(p.cipherLen))
	t = appendTL(t, 0x04, p.cipherLen)
	if b.block == nil {
		return append(t, p.generic...), nil
	}
	// RFC 3962: HMAC over confounder|plaintext, then CBC-CTS in place.
	c := len(t)
	t = append(t, p.confounder[:]...)
	t = b.appendAuthenticator(t, p)
	st := b.scratch.aesState()
	// HMAC-SHA1 (RFC 2104) from the saved pad states; the 20-byte MAC goes
	// after the plaintext; encryption covers only the plaintext, and the
	// MAC is cut to 96 bits.
	defer b.scratch.aes.Put(st)
	if err := st.inner.(encoding.BinaryUnmarshaler).UnmarshalBinary(b.ipad); err != nil {
		return nil, fmt.Errorf("negotiate: restore HMAC state: %w", err)
	}
	st.inner.Write(t[c:])
	inner := st.inner.Sum(st.sum[:0])
	if err := st.outer.(encoding.BinaryUnmarshaler).UnmarshalBinary(b.opad); err != nil {
		return nil, fmt.Errorf("negotiate: restore HMAC state: %w", err)
	}
	st.outer.Write(inner)
	end := len(t)
	t = st.outer.Sum(t)
	encryptCTS(b.block, t[c:end], &st.blocks)
	return t[:end+12], nil
}

// hmacStates returns the marshalled SHA-1 states after absorbing key^ipad
// and key^opad (RFC 2104 section 2).
func hmacStates(key []byte) (ipad, opad []byte, err error) {
	in, out := sha1.New(), sha1.New()
	bs := in.BlockSize()
	if len(key) > bs {
		h := sha1.Sum(key)
		key = h[:]
	}
	pi, po := make([]byte, bs), make([]byte, bs)
	copy(pi, key)
	copy(po, key)
	for i := range pi {
		pi[i] ^= 0x36
		po[i] ^= 0x5c
	}
	in.Write(pi)
	out.Write(po)
	if ipad, err = in.(encoding.BinaryMarshaler).MarshalBinary(); err != nil {
		return nil, nil, fmt.Errorf("save HMAC state: %w", err)
	}
	if opad, err = out.(encoding.BinaryMarshaler).MarshalBinary(); err != nil {
		return nil, nil, fmt.Errorf("save HMAC state: %w", err)
	}
	return ipad, opad, nil
}

// appendAuthenticator appends the DER authenticator (fixed part with the
// plan's channel binding, cusec, ctime, seq-number).
func (b *Builder) appendAuthenticator(buf []byte, p *tokenPlan) []byte {
	now, cusec, seq := p.now, p.cusec, p.seq
	buf = appendTL(buf, 0x62, tlvLen(p.content))
	buf = appendTL(buf, 0x30, p.content)
	start := len(buf)
	buf = append(buf, b.fixed...)
	copy(buf[start+b.bnd:], p.cb[:])
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
	inner, outer hash.Hash // SHA-1 digests, restored from a Builder's pad states
	sum          [sha1.Size]byte
	blocks       [3][aes.BlockSize]byte
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
