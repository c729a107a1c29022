package negotiate

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1-96 is the integrity check of the AES Kerberos etypes (RFC 3962)
	"encoding"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/goidentity/v6"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

const (
	realm = "LAB.TEST"
	spn   = "HTTP/exchange.lab.test"
)

// fixture is a service keytab and a ticket to it minted in the test.
type fixture struct {
	kt     *keytab.Keytab
	der    []byte
	tkt    messages.Ticket
	key    types.EncryptionKey
	cname  types.PrincipalName
	crealm string
}

func newFixture(tb testing.TB, sessionEtype int32, cname types.PrincipalName) *fixture {
	tb.Helper()
	kt := keytab.New()
	if err := kt.AddEntry(spn, realm, "Exch-Passw0rd!", time.Now(), 1, sessionEtype); err != nil {
		tb.Fatal(err)
	}
	now := time.Now().UTC()
	f := types.NewKrbFlags()
	types.SetFlag(&f, flags.Forwardable)
	sname := types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: strings.Split(spn, "/")}
	tkt, key, err := messages.NewTicket(cname, realm, sname, realm, f, kt, sessionEtype, 1, now, now, now.Add(10*time.Hour), now.Add(24*time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	der, err := tkt.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{kt: kt, der: der, tkt: tkt, key: key, cname: cname, crealm: realm}
}

func (f *fixture) builder(tb testing.TB, opts Options) *Builder {
	tb.Helper()
	b, err := New(f.der, f.key, f.cname, f.crealm, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// acceptor is gokrb5's SPNEGO HTTP acceptor with the fixture's keytab; it
// answers 200 with the authenticated user's name.
func (f *fixture) acceptor(tb testing.TB) *httptest.Server {
	tb.Helper()
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := goidentity.FromHTTPRequestContext(r)
		if id == nil {
			http.Error(w, "no identity", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(id.UserName() + "@" + id.Domain()))
	})
	srv := httptest.NewServer(spnego.SPNEGOKRB5Authenticate(inner, f.kt))
	tb.Cleanup(srv.Close)
	return srv
}

func get(tb testing.TB, url, header string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp.StatusCode, body.String()
}

func TestAcceptedByGokrb5(t *testing.T) {
	tests := []struct {
		name  string
		etype int32
		cname types.PrincipalName
		want  string
	}{
		{"aes256", etypeID.AES256_CTS_HMAC_SHA1_96, types.PrincipalName{NameType: 1, NameString: []string{"alice"}}, "alice@" + realm},
		{"aes128", etypeID.AES128_CTS_HMAC_SHA1_96, types.PrincipalName{NameType: 1, NameString: []string{"alice"}}, "alice@" + realm},
		{"rc4", etypeID.RC4_HMAC, types.PrincipalName{NameType: 1, NameString: []string{"alice"}}, "alice@" + realm},
		{"enterprise", etypeID.AES256_CTS_HMAC_SHA1_96, types.PrincipalName{NameType: 10, NameString: []string{"bob.smith@lab.test"}}, "bob.smith@lab.test@" + realm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.etype, tt.cname)
			srv := f.acceptor(t)
			b := f.builder(t, Options{})
			h1, err := b.Header()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(h1, HeaderPrefix) {
				t.Fatalf("header %q", h1[:20])
			}
			if code, body := get(t, srv.URL, h1); code != http.StatusOK || body != tt.want {
				t.Fatalf("first token: %d %q", code, body)
			}
			// Each call makes a new authenticator: a second token is
			// accepted, the first one replayed is refused.
			h2, err := b.Header()
			if err != nil {
				t.Fatal(err)
			}
			if h2 == h1 {
				t.Fatal("two calls gave the same header")
			}
			if code, _ := get(t, srv.URL, h2); code != http.StatusOK {
				t.Fatalf("second token: %d", code)
			}
			if code, _ := get(t, srv.URL, h1); code != http.StatusUnauthorized {
				t.Fatalf("replayed token: %d, want 401", code)
			}
		})
	}
}

func TestWrongKeyRefused(t *testing.T) {
	f := newFixture(t, etypeID.AES256_CTS_HMAC_SHA1_96, types.PrincipalName{NameType: 1, NameString: []string{"alice"}})
	srv := f.acceptor(t)
	bad := f.key
	bad.KeyValue = bytes.Repeat([]byte{7}, len(bad.KeyValue))
	b, err := New(f.der, bad, f.cname, f.crealm, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := b.Header()
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, srv.URL, h); code != http.StatusUnauthorized {
		t.Fatalf("token with a wrong session key: %d, want 401", code)
	}
}

// decodeToken returns the AP-REQ inside a Negotiate token and the mech types.
func decodeToken(tb testing.TB, tok []byte, key types.EncryptionKey) (spnego.NegTokenInit, messages.APReq) {
	tb.Helper()
	var st spnego.SPNEGOToken
	if err := st.Unmarshal(tok); err != nil {
		tb.Fatalf("SPNEGO token: %v", err)
	}
	if !st.Init {
		tb.Fatal("not a NegTokenInit")
	}
	var mt spnego.KRB5Token
	if err := mt.Unmarshal(st.NegTokenInit.MechTokenBytes); err != nil {
		tb.Fatalf("KRB5 token: %v", err)
	}
	if !mt.IsAPReq() {
		tb.Fatal("mech token is not an AP-REQ")
	}
	if err := mt.APReq.DecryptAuthenticator(key); err != nil {
		tb.Fatalf("authenticator: %v", err)
	}
	return st.NegTokenInit, mt.APReq
}

func TestSameMeaningAsGokrb5(t *testing.T) {
	f := newFixture(t, etypeID.AES256_CTS_HMAC_SHA1_96, types.PrincipalName{NameType: 1, NameString: []string{"alice"}})
	now := time.Date(2026, 11, 25, 13, 0, 0, 123456000, time.UTC)
	// gokrb5 asks for integrity and confidentiality only.
	b := f.builder(t, Options{Flags: FlagInteg | FlagConf, Now: func() time.Time { return now }})
	ours, err := b.Token()
	if err != nil {
		t.Fatal(err)
	}
	cl := client.NewWithPassword("alice", realm, "unused", config.New())
	nt, err := spnego.NewNegTokenInitKRB5(cl, f.tkt, f.key)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := (&spnego.SPNEGOToken{Init: true, NegTokenInit: nt}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	oi, oa := decodeToken(t, ours, f.key)
	ti, ta := decodeToken(t, theirs, f.key)
	if len(oi.MechTypes) != 1 || !oi.MechTypes[0].Equal(ti.MechTypes[0]) || !oi.MechTypes[0].Equal(gssapi.OIDKRB5.OID()) {
		t.Fatalf("mech types %v vs %v", oi.MechTypes, ti.MechTypes)
	}
	otk, _ := oa.Ticket.Marshal()
	ttk, _ := ta.Ticket.Marshal()
	if !bytes.Equal(otk, ttk) || !bytes.Equal(otk, f.der) {
		t.Fatal("tickets differ")
	}
	if oa.PVNO != ta.PVNO || oa.MsgType != ta.MsgType || !bytes.Equal(oa.APOptions.Bytes, ta.APOptions.Bytes) {
		t.Fatalf("AP-REQ header: %d/%d %x vs %d/%d %x", oa.PVNO, oa.MsgType, oa.APOptions.Bytes, ta.PVNO, ta.MsgType, ta.APOptions.Bytes)
	}
	if oa.EncryptedAuthenticator.EType != ta.EncryptedAuthenticator.EType {
		t.Fatal("authenticator etypes differ")
	}
	x, y := oa.Authenticator, ta.Authenticator
	if x.AVNO != y.AVNO || x.CRealm != y.CRealm || !x.CName.Equal(y.CName) || x.CName.NameType != y.CName.NameType {
		t.Fatalf("authenticator client %+v vs %+v", x, y)
	}
	if x.Cksum.CksumType != y.Cksum.CksumType || !bytes.Equal(x.Cksum.Checksum, y.Cksum.Checksum) {
		t.Fatalf("GSS checksum %d %x vs %d %x", x.Cksum.CksumType, x.Cksum.Checksum, y.Cksum.CksumType, y.Cksum.Checksum)
	}
	if !x.CTime.Equal(now.Truncate(time.Second)) || x.Cusec != 123456 {
		t.Fatalf("ctime %v cusec %d", x.CTime, x.Cusec)
	}
	if x.SeqNumber <= 0 || x.SeqNumber > 0x3fffffff {
		t.Fatalf("seq %d", x.SeqNumber)
	}
}

func TestDefaultFlagsAndFreshness(t *testing.T) {
	f := newFixture(t, etypeID.AES256_CTS_HMAC_SHA1_96, types.PrincipalName{NameType: 1, NameString: []string{"alice"}})
	fixed := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	b := f.builder(t, Options{Now: func() time.Time { return fixed }})
	seqs := map[int64]bool{}
	var prev []byte
	for range 50 {
		tok, err := b.Token()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(tok, prev) {
			t.Fatal("identical tokens")
		}
		prev = tok
		_, ap := decodeToken(t, tok, f.key)
		a := ap.Authenticator
		seqs[a.SeqNumber] = true
		if got := a.Cksum.Checksum[20]; got != byte(DefaultFlags) || a.Cksum.CksumType != gssChecksumType {
			t.Fatalf("flags %#x type %#x", got, a.Cksum.CksumType)
		}
		if !types.IsFlagSet(&ap.APOptions, flags.APOptionMutualRequired) {
			t.Fatal("mutual flag without the mutual-required AP option")
		}
	}
	if len(seqs) < 49 {
		t.Fatalf("only %d distinct sequence numbers in 50 tokens", len(seqs))
	}
}

func TestCTSMatchesGokrb5(t *testing.T) {
	// Lengths around block boundaries, decrypted by gokrb5.
	f := newFixture(t, etypeID.AES128_CTS_HMAC_SHA1_96, types.PrincipalName{NameType: 1, NameString: []string{"a"}})
	for _, realmLen := range []int{1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 60} {
		cr := strings.Repeat("R", realmLen)
		bb, err := New(f.der, f.key, f.cname, cr, Options{})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := bb.Token()
		if err != nil {
			t.Fatal(err)
		}
		ct := cipherOf(t, tok)
		pt, err := crypto.DecryptMessage(ct, f.key, keyusage.AP_REQ_AUTHENTICATOR)
		if err != nil {
			t.Fatalf("realm length %d: gokrb5 cannot decrypt: %v", realmLen, err)
		}
		var a types.Authenticator
		if err := a.Unmarshal(pt); err != nil || a.CRealm != cr {
			t.Fatalf("realm length %d: %v %q", realmLen, err, a.CRealm)
		}
	}
}

// cipherOf returns the encrypted authenticator of a token, undecrypted.
func cipherOf(tb testing.TB, tok []byte) []byte {
	tb.Helper()
	var st spnego.SPNEGOToken
	if err := st.Unmarshal(tok); err != nil {
		tb.Fatalf("SPNEGO token: %v", err)
	}
	var mt spnego.KRB5Token
	if err := mt.Unmarshal(st.NegTokenInit.MechTokenBytes); err != nil {
		tb.Fatalf("KRB5 token: %v", err)
	}
	return mt.APReq.EncryptedAuthenticator.Cipher
}

func TestNewRejects(t *testing.T) {
	f := newFixture(t, etypeID.AES256_CTS_HMAC_SHA1_96, types.PrincipalName{NameType: 1, NameString: []string{"alice"}})
	tests := []struct {
		name   string
		der    []byte
		key    types.EncryptionKey
		cname  types.PrincipalName
		crealm string
		opts   Options
	}{
		{"garbage ticket", []byte{1, 2, 3}, f.key, f.cname, realm, Options{}},
		{"trailing bytes", append(append([]byte{}, f.der...), 0), f.key, f.cname, realm, Options{}},
		{"no client", f.der, f.key, types.PrincipalName{}, realm, Options{}},
		{"no realm", f.der, f.key, f.cname, "", Options{}},
		{"bad etype", f.der, types.EncryptionKey{KeyType: 99, KeyValue: f.key.KeyValue}, f.cname, realm, Options{}},
		{"short key", f.der, types.EncryptionKey{KeyType: 18, KeyValue: f.key.KeyValue[:16]}, f.cname, realm, Options{}},
		{"delegation", f.der, f.key, f.cname, realm, Options{Flags: FlagDeleg | FlagMutual}},
		{"etype 20", f.der, types.EncryptionKey{KeyType: 20, KeyValue: make([]byte, 24)}, f.cname, realm, Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.der, tt.key, tt.cname, tt.crealm, tt.opts); err == nil {
				t.Fatal("accepted")
			} else if strings.Contains(err.Error(), string(f.key.KeyValue)) {
				t.Fatal("error contains the key")
			}
		})
	}
}

func FuzzNew(f *testing.F) {
	fx := newFixture(f, etypeID.AES256_CTS_HMAC_SHA1_96, types.PrincipalName{NameType: 1, NameString: []string{"alice"}})
	f.Add(fx.der, "alice", "LAB.TEST")
	f.Add([]byte{0x61, 0x00}, "a", "R")
	f.Fuzz(func(t *testing.T, der []byte, name, crealm string) {
		b, err := New(der, fx.key, types.PrincipalName{NameType: 1, NameString: []string{name}}, crealm, Options{})
		if err != nil {
			return
		}
		h, err := b.Header()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, HeaderPrefix))
		if err != nil {
			t.Fatal(err)
		}
		var st spnego.SPNEGOToken
		if err := st.Unmarshal(raw); err != nil {
			t.Fatalf("token does not decode: %v", err)
		}
	})
}

// BenchmarkNegotiateToken builds one header. ticket=lab-size pads the
// ticket's encrypted part to the size of the lab's Samba tickets (1,408-byte
// ticket DER with its PAC; a 2.1 KB header): base64 and copying grow with it.
func BenchmarkNegotiateToken(b *testing.B) {
	f := newFixture(b, etypeID.AES256_CTS_HMAC_SHA1_96, types.PrincipalName{NameType: 10, NameString: []string{"bob.smith@lab.test"}})
	big := *f
	tkt := f.tkt
	tkt.EncPart.Cipher = make([]byte, len(f.tkt.EncPart.Cipher)+1408-len(f.der))
	der, err := tkt.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	big.der = der
	for _, tc := range []struct {
		name string
		f    *fixture
	}{{"ticket=fixture", f}, {"ticket=lab-size", &big}} {
		b.Run(tc.name, func(b *testing.B) {
			bl := tc.f.builder(b, Options{})
			b.ReportAllocs()
			start, n := cpuTime(), 0
			for b.Loop() {
				if _, err := bl.Header(); err != nil {
					b.Fatal(err)
				}
				n++
			}
			reportCPU(b, start, n)
		})
	}
	// users=200: one Builder per user as the edge holds them, taken in
	// turn, so each call meets its Builder's state as the proxy does.
	// scratch=shared: one Scratch for all of them, as the edge passes.
	for _, shared := range []bool{false, true} {
		const users = 200
		b.Run(fmt.Sprintf("ticket=lab-size/users=%d/scratch-shared=%v", users, shared), func(b *testing.B) {
			var sc *Scratch
			if shared {
				sc = new(Scratch)
			}
			bls := make([]*Builder, users)
			for i := range bls {
				bls[i] = big.builder(b, Options{Scratch: sc})
			}
			b.ReportAllocs()
			start, n := cpuTime(), 0
			for b.Loop() {
				if _, err := bls[n%users].Header(); err != nil {
					b.Fatal(err)
				}
				n++
			}
			reportCPU(b, start, n)
		})
	}
}

// reportCPU reports process CPU time per op since start.
func reportCPU(b *testing.B, start time.Duration, ops int) {
	b.Helper()
	if used := cpuTime() - start; used > 0 && ops > 0 {
		b.ReportMetric(float64(used.Nanoseconds())/float64(ops), "cpu-ns/op")
	}
}

func BenchmarkGokrb5NegTokenInit(b *testing.B) {
	f := newFixture(b, etypeID.AES256_CTS_HMAC_SHA1_96, types.PrincipalName{NameType: 10, NameString: []string{"bob.smith@lab.test"}})
	cl := client.NewWithPassword("bob.smith@lab.test", realm, "unused", config.New())
	b.ReportAllocs()
	start, n := cpuTime(), 0
	defer func() { reportCPU(b, start, n) }()
	for b.Loop() {
		n++
		nt, err := spnego.NewNegTokenInitKRB5(cl, f.tkt, f.key)
		if err != nil {
			b.Fatal(err)
		}
		tok, err := (&spnego.SPNEGOToken{Init: true, NegTokenInit: nt}).Marshal()
		if err != nil {
			b.Fatal(err)
		}
		_ = HeaderPrefix + base64.StdEncoding.EncodeToString(tok)
	}
}

// walkDER checks that b is a sequence of well-formed TLVs whose constructed
// elements are exactly filled by their children (strict lengths, as MIT's
// decoder wants). OCTET STRINGs holding a GSS token are descended into.
func walkDER(t *testing.T, b []byte, path string) {
	t.Helper()
	for len(b) > 0 {
		if len(b) < 2 {
			t.Fatalf("%s: truncated TLV", path)
		}
		tag := b[0]
		n, hdr := int(b[1]), 2
		if n&0x80 != 0 {
			l := n & 0x7f
			if l == 0 || l > 3 || len(b) < 2+l {
				t.Fatalf("%s: bad length form", path)
			}
			n = 0
			for _, x := range b[2 : 2+l] {
				n = n<<8 | int(x)
			}
			if n < 0x80 || (l > 1 && b[2] == 0) {
				t.Fatalf("%s: non-minimal length", path)
			}
			hdr = 2 + l
		}
		if len(b) < hdr+n {
			t.Fatalf("%s: tag %#x length %d exceeds %d available", path, tag, n, len(b)-hdr)
		}
		content := b[hdr : hdr+n]
		sub := fmt.Sprintf("%s/%02x", path, tag)
		switch {
		case tag == 0x60 && len(content) > 11 && bytes.Equal(content[:11], krb5OID):
			// GSS krb5 token: OID, 2-byte TOK_ID, then the AP-REQ.
			walkDER(t, content[:11], sub)
			walkDER(t, content[13:], sub)
		case tag&0x20 != 0:
			walkDER(t, content, sub)
		case tag == 0x04 && len(content) > 0 && content[0] == 0x60 && bytes.Contains(content[:min(len(content), 16)], krb5OID):
			// The mechToken: a GSS krb5 token. Other octet strings (the
			// ciphertexts) are opaque, even when they happen to start 0x60.
			walkDER(t, content, sub)
		}
		b = b[hdr+n:]
	}
}

func TestStrictDER(t *testing.T) {
	for _, et := range []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.RC4_HMAC} {
		f := newFixture(t, et, types.PrincipalName{NameType: 10, NameString: []string{"bob.smith@lab.test"}})
		b := f.builder(t, Options{})
		tok, err := b.Token()
		if err != nil {
			t.Fatal(err)
		}
		walkDER(t, tok, "token")
		pt, err := b.authenticatorPlaintext(t)
		if err != nil {
			t.Fatal(err)
		}
		walkDER(t, pt, "authenticator")
	}
}

// authenticatorPlaintext decrypts a fresh authenticator for inspection.
func (b *Builder) authenticatorPlaintext(t *testing.T) ([]byte, error) {
	t.Helper()
	tok, err := b.Token()
	if err != nil {
		return nil, err
	}
	return crypto.DecryptMessage(cipherOf(t, tok), b.key, keyusage.AP_REQ_AUTHENTICATOR)
}

// TestHeaderAcrossTokenLengths checks the cached base64 of token heads: the
// lengths of cusec and of the sequence number change the token's length and
// so its framing; every header must still decode to a token whose
// authenticator decrypts and carries the time asked for.
func TestHeaderAcrossTokenLengths(t *testing.T) {
	for _, et := range []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.RC4_HMAC} {
		t.Run(strconv.Itoa(int(et)), func(t *testing.T) {
			f := newFixture(t, et, types.PrincipalName{NameType: 10, NameString: []string{"bob.smith@lab.test"}})
			var now time.Time
			b := f.builder(t, Options{Now: func() time.Time { return now }})
			base := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)
			lengths := map[int]bool{}
			for i := range 300 {
				// cusec of 1, 2 and 3 DER bytes; the random sequence number
				// gives 1-4 more lengths. The clock moves forward (a
				// repeated time is moved on: TestTimestampsStrictlyIncrease).
				now = base.Add(time.Duration(i)*time.Second + time.Duration([]int{0, 5, 200, 40000, 999999}[i%5])*time.Microsecond)
				h, err := b.Header()
				if err != nil {
					t.Fatal(err)
				}
				tok, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, HeaderPrefix))
				if err != nil {
					t.Fatalf("header %d: %v", i, err)
				}
				lengths[len(tok)] = true
				_, ap := decodeToken(t, tok, f.key)
				if a := ap.Authenticator; a.CTime.Unix() != now.Unix() || a.Cusec != now.Nanosecond()/1000 {
					t.Fatalf("header %d: authenticator time %v.%06d, want %v", i, a.CTime, a.Cusec, now)
				}
			}
			if len(lengths) < 3 {
				t.Fatalf("only %d token lengths seen; the test does not cover the cache", len(lengths))
			}
		})
	}
}

// TestSharedScratch: Builders of different users sharing one Scratch, called
// concurrently, each make tokens that decrypt with their own key and name
// their own user.
func TestSharedScratch(t *testing.T) {
	sc := new(Scratch)
	users := []string{"alice@lab.test", "bob.smith@lab.test", "carol@lab.test"}
	fs := make([]*fixture, len(users))
	bs := make([]*Builder, len(users))
	for i, u := range users {
		fs[i] = newFixture(t, etypeID.AES256_CTS_HMAC_SHA1_96, types.PrincipalName{NameType: 10, NameString: []string{u}})
		bs[i] = fs[i].builder(t, Options{Scratch: sc})
	}
	type got struct {
		i   int
		tok []byte
	}
	out := make(chan got, 3*len(users)*50)
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for n := range 50 * len(users) {
				i := (n + w) % len(users)
				h, err := bs[i].Header()
				if err != nil {
					t.Error(err)
					return
				}
				tok, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, HeaderPrefix))
				if err != nil {
					t.Error(err)
					return
				}
				out <- got{i, tok}
			}
		})
	}
	wg.Wait()
	close(out)
	for g := range out {
		_, ap := decodeToken(t, g.tok, fs[g.i].key)
		if name := ap.Authenticator.CName.PrincipalNameString(); name != users[g.i] {
			t.Fatalf("token of %s names %s", users[g.i], name)
		}
	}
}

// TestHMACStates: restoring the saved pad states gives crypto/hmac's
// HMAC-SHA1, for keys shorter than, equal to and longer than a block.
func TestHMACStates(t *testing.T) {
	msg := []byte("an authenticator of about a hundred bytes, confounder first")
	for _, n := range []int{16, 32, 64, 65} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			key := make([]byte, n)
			for i := range key {
				key[i] = byte(i*7 + n)
			}
			ipad, opad, err := hmacStates(key)
			if err != nil {
				t.Fatal(err)
			}
			sc := new(Scratch)
			st := sc.aesState()
			if err := st.inner.(encoding.BinaryUnmarshaler).UnmarshalBinary(ipad); err != nil {
				t.Fatal(err)
			}
			st.inner.Write(msg)
			if err := st.outer.(encoding.BinaryUnmarshaler).UnmarshalBinary(opad); err != nil {
				t.Fatal(err)
			}
			st.outer.Write(st.inner.Sum(nil))
			want := hmac.New(sha1.New, key)
			want.Write(msg)
			if got := st.outer.Sum(nil); !bytes.Equal(got, want.Sum(nil)) {
				t.Fatalf("HMAC %x, want %x", got, want.Sum(nil))
			}
		})
	}
}
