package kdctest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/kdc"
)

// Kind classifies the requests the fake KDC answers.
type Kind string

// Kinds of requests.
const (
	KindAS        Kind = "as"        // AS-REQ
	KindTGT       Kind = "tgt"       // TGS-REQ for krbtgt/X (renewal or cross-realm)
	KindS4U2Self  Kind = "s4u2self"  // TGS-REQ with PA-FOR-USER
	KindS4U2Proxy Kind = "s4u2proxy" // TGS-REQ with cname-in-addl-tkt
	KindRenew     Kind = "renew"     // TGS-REQ with the renew option (any ticket)
	KindTGS       Kind = "tgs"       // any other TGS-REQ
)

// Config describes the fake realm.
type Config struct {
	// Realm is the realm, e.g. LAB.TEST.
	Realm string
	// Service and ServicePassword are the KCD service account.
	Service, ServicePassword string
	// ServiceSPNs are SPNs registered on the service account.
	ServiceSPNs []string
	// Users are account names (sAMAccountName) known to the realm.
	Users []string
	// UPNs maps a UPN to the account name it belongs to.
	UPNs map[string]string
	// Sensitive accounts cannot be delegated.
	Sensitive []string
	// DelegateTo lists the SPNs the service account may delegate to
	// (msDS-AllowedToDelegateTo).
	DelegateTo []string
	// RBCDTargets lists target SPNs whose account names the service account
	// in msDS-AllowedToActOnBehalfOfOtherIdentity (resource-based
	// constrained delegation); S4U2Proxy to them needs no DelegateTo entry.
	RBCDTargets []string
	// NoProtocolTransition makes the service account "Use Kerberos only":
	// its S4U2Self tickets are not forwardable, so S4U2Proxy is refused
	// with KDC_ERR_BADOPTION (Windows and Samba alike).
	NoProtocolTransition bool
	// Targets maps a target SPN (service/host) to its account's password.
	Targets map[string]string
	// Trusts maps another realm to the password both sides derive the
	// inter-realm keys from.
	Trusts map[string]string
	// SessionEtype is the etype of the session keys issued. Zero means
	// AES256 (18).
	SessionEtype int32
	// TGSSessionEtype, when set, is the etype of the session keys issued by
	// TGS exchanges (S4U2Self, S4U2Proxy, referrals, renewals), whatever
	// the request offered: a KDC that ignores the client's etype list.
	// Zero means SessionEtype.
	TGSSessionEtype int32
	// TicketLifetime caps ticket lifetimes. Zero means 10h.
	TicketLifetime time.Duration
	// RenewLifetime caps renewable lifetimes (renew-till after the AS
	// exchange). Zero means 7 days. A ticket issued by the TGS gets at most
	// the end time and renew-till of the TGT it was issued with (RFC 4120
	// section 3.3.3; Samba does the same).
	RenewLifetime time.Duration
	// RefuseServiceRenewal answers a renewal of any ticket but a TGT with
	// KDC_ERR_POLICY, as Heimdal and so Samba's AD KDC do ("PA-DATA is not a
	// ticket-granting ticket"): they accept only a TGT in PA-TGS-REQ. False
	// renews service tickets as RFC 4120 section 3.3.3 allows.
	RefuseServiceRenewal bool
	// CanonicalizeEnterprise returns an enterprise-named client as its
	// account name (NT-PRINCIPAL), as some KDCs do.
	CanonicalizeEnterprise bool
	// NonForwardableTGT issues TGTs without the forwardable flag.
	NonForwardableTGT bool
	// LenientChecksumType accepts a PA-FOR-USER checksum type other than the
	// session key's (Samba/Heimdal); false refuses it with
	// KRB_AP_ERR_MODIFIED like Windows Server 2025.
	LenientChecksumType bool
	// ProxyAnswers maps a target SPN to another registered target: an
	// S4U2Proxy for the first is answered with a ticket for the second (a
	// broken or hostile KDC).
	ProxyAnswers map[string]string
	// ArmorAccount and ArmorPassword are a computer account (SEGGW$) that
	// gets TGTs by a plain AS exchange, to armour others' (FAST).
	ArmorAccount, ArmorPassword string
	// RequireArmor refuses the service account's AS exchange unless it is
	// armoured with ArmorAccount's TGT: KDC_ERR_POLICY with NTSTATUS
	// 0xC0000070 in the e-data, as Samba 4.22 answers for an authentication
	// policy's AllowedToAuthenticateFrom.
	RequireArmor bool
	// BadFASTFinished answers armoured AS requests with a KrbFastFinished
	// whose ticket checksum is wrong (a tampered reply).
	BadFASTFinished bool
	// EmptyReplyFlags answers the requests of these kinds with an empty
	// flags BIT STRING in the reply's encrypted part (RFC 4120 wants at
	// least 32 bits): a broken or hostile KDC. The ticket's own flags are
	// kept, so the KDC's later checks of it are as before.
	EmptyReplyFlags map[Kind]bool
	// Now returns the KDC's time. Nil means time.Now.
	Now func() time.Time
}

// Request is a request the fake KDC received, with what tests check.
type Request struct {
	Kind Kind
	// Raw is the request as received.
	Raw []byte
	// PATypes are the padata types in order.
	PATypes []int32
	// KDCOptions of the request body.
	KDCOptions asn1.BitString
	// Realm and SName of the request body.
	Realm string
	SName types.PrincipalName
	// AdditionalTickets is the number of additional tickets.
	AdditionalTickets int
	// AuthenticatorTime is the PA-TGS-REQ authenticator's ctime plus cusec
	// (zero when it did not decrypt).
	AuthenticatorTime time.Time
	// BodyChecksumType is the authenticator checksum type (0 when absent).
	BodyChecksumType int32
	// SessionKeyType is the etype of the TGT session key.
	SessionKeyType int32
	// ForUser is the PA-FOR-USER user and realm and checksum type.
	ForUserName      types.PrincipalName
	ForUserRealm     string
	ForUserCksumType int32
	// PACOptions is the PA-PAC-OPTIONS flags, when sent.
	PACOptions asn1.BitString
	// ArmorClient is the client of the armor TGT of an armoured (FAST) AS
	// request; empty when it was not armoured.
	ArmorClient string
	// Code is the KRB-ERROR code answered, 0 for a ticket.
	Code int32
}

// KDC is a fake KDC. Its methods are safe for concurrent use.
type KDC struct {
	cfg    Config
	krbtgt types.EncryptionKey

	mu       sync.Mutex
	counts   map[Kind]int
	fail     map[Kind]int32
	wrong    map[Kind]bool
	requests []Request
	keys     sync.Map // derived keys by password, salt and etype
	ln       net.Listener
	addr     string
	wg       sync.WaitGroup
}

// New returns a fake KDC that is not listening; use Handle or Exchange, or
// Listen.
func New(cfg Config) (*KDC, error) {
	if cfg.Realm == "" || cfg.Service == "" || cfg.ServicePassword == "" {
		return nil, errors.New("kdctest: realm, service and service password are required")
	}
	if cfg.SessionEtype == 0 {
		cfg.SessionEtype = etypeID.AES256_CTS_HMAC_SHA1_96
	}
	if cfg.TicketLifetime == 0 {
		cfg.TicketLifetime = 10 * time.Hour
	}
	if cfg.RenewLifetime == 0 {
		cfg.RenewLifetime = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	et, err := crypto.GetEtype(etypeID.AES256_CTS_HMAC_SHA1_96)
	if err != nil {
		return nil, err
	}
	k, err := types.GenerateEncryptionKey(et)
	if err != nil {
		return nil, err
	}
	return &KDC{cfg: cfg, krbtgt: k, counts: map[Kind]int{}, fail: map[Kind]int32{}, wrong: map[Kind]bool{}}, nil
}

// Start returns a fake KDC listening on 127.0.0.1:0, closed at the end of
// the test.
func Start(tb testing.TB, cfg Config) *KDC {
	tb.Helper()
	k, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := k.Listen(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(k.Close)
	return k
}

// Listen starts serving TCP on loopback: on a new port the first time, on
// the same address after Close (to test a KDC that stops and starts again).
func (k *KDC) Listen() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ln != nil {
		return errors.New("kdctest: already listening")
	}
	addr := k.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	k.ln, k.addr = ln, ln.Addr().String()
	k.wg.Add(1)
	go k.serve(ln)
	return nil
}

// Close stops listening and waits for open connections to finish.
func (k *KDC) Close() {
	k.mu.Lock()
	ln := k.ln
	k.ln = nil
	k.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	k.wg.Wait()
}

// Addr returns the host:port the KDC listens (or listened) on.
func (k *KDC) Addr() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.addr
}

func (k *KDC) serve(ln net.Listener) {
	defer k.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			var hdr [4]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			n := binary.BigEndian.Uint32(hdr[:])
			if n > 1<<20 {
				return
			}
			req := make([]byte, n)
			if _, err := io.ReadFull(c, req); err != nil {
				return
			}
			rep := k.Handle(req)
			out := make([]byte, 4+len(rep))
			binary.BigEndian.PutUint32(out, uint32(len(rep)))
			copy(out[4:], rep)
			_, _ = c.Write(out)
		}()
	}
}

// Exchange answers in process, as a kdc.Exchanger for one realm.
func (k *KDC) Exchange(ctx context.Context, realm string, req []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, &kdc.UnreachableError{Realm: realm, Cause: err}
	}
	if !strings.EqualFold(realm, k.cfg.Realm) {
		return nil, fmt.Errorf("%w %s", kdc.ErrUnknownRealm, realm)
	}
	rep := k.Handle(req)
	if kdc.MessageType(rep) == 30 {
		var m messages.KRBError
		if err := m.Unmarshal(rep); err != nil {
			return nil, err
		}
		return nil, &kdc.KRBError{Realm: k.cfg.Realm, KDC: "in-process", Msg: m}
	}
	return rep, nil
}

// Count returns how many requests of kind were received.
func (k *KDC) Count(kind Kind) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.counts[kind]
}

// Requests returns the requests of kind received so far (all kinds when
// kind is empty).
func (k *KDC) Requests(kind Kind) []Request {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []Request
	for _, r := range k.requests {
		if kind == "" || r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

// FailWith makes requests of kind answer with a KRB-ERROR code from now
// on; code 0 clears it.
func (k *KDC) FailWith(kind Kind, code int32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fail[kind] = code
}

// SetWrongClient makes requests of kind return a ticket whose client is the
// service account instead of the user (the silent fallback).
func (k *KDC) SetWrongClient(kind Kind, on bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.wrong[kind] = on
}

// ServiceKey returns the long-term key of a target SPN (service/host).
func (k *KDC) ServiceKey(spn string) (types.EncryptionKey, error) {
	pw, ok := k.cfg.Targets[spn]
	if !ok {
		return types.EncryptionKey{}, fmt.Errorf("kdctest: no target %s", spn)
	}
	return k.derive(pw, k.cfg.Realm, strings.Split(spn, "/"), etypeID.AES256_CTS_HMAC_SHA1_96)
}

// Keytab returns a keytab holding a target SPN's key, for acceptor tests.
func (k *KDC) Keytab(spn string) (*keytab.Keytab, error) {
	pw, ok := k.cfg.Targets[spn]
	if !ok {
		return nil, fmt.Errorf("kdctest: no target %s", spn)
	}
	kt := keytab.New()
	if err := kt.AddEntry(spn, k.cfg.Realm, pw, k.cfg.Now(), 1, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
		return nil, err
	}
	return kt, nil
}

// principalKey derives a key with the default salt REALM+components (AD's
// salt for user accounts when the components are the sAMAccountName).
func principalKey(password, realm string, components []string, etype int32) (types.EncryptionKey, error) {
	k, _, err := crypto.GetKeyFromPassword(password,
		types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: components}, realm, etype, nil)
	return k, err
}

func (k *KDC) serviceKey(etype int32) (types.EncryptionKey, error) {
	return k.derive(k.cfg.ServicePassword, k.cfg.Realm, []string{k.cfg.Service}, etype)
}

// derive is principalKey with a cache: string-to-key runs PBKDF2 and would
// dominate the fake's cost (and the client benchmarks).
func (k *KDC) derive(password, realm string, components []string, etype int32) (types.EncryptionKey, error) {
	id := fmt.Sprintf("%d\x00%s\x00%s\x00%s", etype, realm, strings.Join(components, "/"), password)
	if v, ok := k.keys.Load(id); ok {
		return v.(types.EncryptionKey), nil
	}
	key, err := principalKey(password, realm, components, etype)
	if err == nil {
		k.keys.Store(id, key)
	}
	return key, err
}

// interRealmKey is the key of krbtgt/to issued in realm from; both fake
// KDCs of a trust derive it from the shared trust password.
func (k *KDC) interRealmKey(from, to string) (types.EncryptionKey, bool) {
	other := from
	if strings.EqualFold(from, k.cfg.Realm) {
		other = to
	}
	for r, pw := range k.cfg.Trusts {
		if strings.EqualFold(r, other) {
			key, err := k.derive(pw, strings.ToUpper(from), []string{"krbtgt", strings.ToUpper(to)}, etypeID.AES256_CTS_HMAC_SHA1_96)
			return key, err == nil
		}
	}
	return types.EncryptionKey{}, false
}

func (k *KDC) record(r Request) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.counts[r.Kind]++
	k.requests = append(k.requests, r)
}

func (k *KDC) injected(kind Kind) (int32, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fail[kind], k.wrong[kind]
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}
