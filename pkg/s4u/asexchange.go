package s4u

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/krbfast"
)

// longTermKey is the service account key derived from its password for one
// etype and salt; derivation (PBKDF2, 4096 rounds) is kept, not redone at
// each TGT refresh.
type longTermKey struct {
	key  types.EncryptionKey
	salt string
	s2k  string
}

// asExchange gets a TGT for the service account with encrypted-timestamp
// pre-authentication, or, with an armor account, armoured with FAST and
// encrypted challenge (fast.go). The KDC may answer PREAUTH_REQUIRED (or
// ETYPE_NOSUPP for a cached key) once, with the etype and salt to use, and
// KRB_AP_ERR_SKEW once, with its time; with FAST, only when the error came
// inside the armour.
func (c *Client) asExchange(ctx context.Context) (*Ticket, error) {
	lt := c.cachedKey()
	armor, err := c.newArmor(ctx)
	if err != nil {
		return nil, err
	}
	var preauthRetried, skewRetried bool
	for {
		nonce, wire, err := c.buildASReq(lt, armor)
		if err != nil {
			return nil, err
		}
		rep, err := c.exchange(ctx, StageASReq, c.realm, wire)
		if err != nil && armor != nil {
			var plain bool
			if err, plain = unwrapFASTError(armor, err, nonce); plain {
				// Outside the armour nothing is authenticated: the KDC's
				// final answer, never acted on (no salt, etype or time
				// taken from it), as MIT's client does (RFC 6113 5.4.4).
				return nil, unarmouredError(c.realm, err)
			}
		}
		if err != nil {
			var ke *kdc.KRBError
			if !preauthRetried && errors.As(err, &ke) && (ke.Code() == errorcode.KDC_ERR_PREAUTH_REQUIRED ||
				ke.Code() == errorcode.KDC_ERR_ETYPE_NOSUPP && lt != nil) {
				// The KDC told us the etype and salt to use (or our cached
				// key's etype is no longer offered): derive the key and retry
				// once. PREAUTH_FAILED is not retried: each failure counts
				// towards the account's lockout.
				preauthRetried = true
				info := etypeInfoFromError(ke.Msg.EData)
				lt, err = c.deriveKey(ctx, info, c.realm)
				if err != nil {
					return nil, err
				}
				continue
			}
			if !skewRetried && c.adoptKDCTime(StageASReq, c.realm, err) {
				skewRetried = true
				continue
			}
			if preauthRetried && errors.As(err, &ke) && ke.Code() == errorcode.KDC_ERR_PREAUTH_REQUIRED {
				return nil, fmt.Errorf("s4u: %s: KDC kept asking for pre-authentication", StageASReq)
			}
			return nil, newKDCError(StageASReq, c.realm, err)
		}
		r, err := decodeReply(rep, true)
		if err != nil {
			return nil, fmt.Errorf("s4u: %s: %w", StageASReq, err)
		}
		var fastRep *krbfast.Response
		if armor != nil {
			if fastRep, err = armor.open(r.PAData, nonce); err == nil {
				err = armor.checkFinished(r, fastRep)
			}
			if err != nil {
				return nil, fmt.Errorf("s4u: %s: FAST: %w", StageASReq, err)
			}
		}
		key, err := c.replyKey(ctx, lt, r)
		if err != nil {
			return nil, err
		}
		open := key.key
		if fastRep != nil {
			if open, err = strengthen(fastRep, key.key); err != nil {
				return nil, fmt.Errorf("s4u: %s: FAST reply key: %w", StageASReq, err)
			}
		}
		tgt, err := r.open(open, keyusage.AS_REP_ENCPART, nonce, c.cfg.Etypes)
		var se *SessionKeyError
		if errors.As(err, &se) {
			return nil, c.replyError(StageASReq, c.realm, err)
		}
		if err != nil {
			return nil, fmt.Errorf("s4u: %s: %w (is the service account password right?)", StageASReq, err)
		}
		c.storeKey(key)
		if !isTGTFor(tgt.SName, c.realm) {
			return nil, fmt.Errorf("s4u: %s: the KDC answered with a ticket for %s, want krbtgt/%s", StageASReq,
				principalString(tgt.SName, tgt.SRealm), c.realm)
		}
		if !tgt.Forwardable() {
			c.log.Warn("service account TGT is not forwardable; S4U will fail with KDC_ERR_BADOPTION",
				"realm", c.realm, "account", c.cfg.Service)
		}
		return tgt, nil
	}
}

// buildASReq encodes an AS-REQ for krbtgt/REALM, forwardable and renewable
// (gokrb5 defaults to neither; S4U needs a forwardable TGT), with the PAC
// requested and, when a key is known, PA-ENC-TIMESTAMP; with armor, the
// request is armoured and the key proven by PA-ENCRYPTED-CHALLENGE instead.
func (c *Client) buildASReq(lt *longTermKey, armor *fastArmor) (int, []byte, error) {
	nonce, err := randomNonce()
	if err != nil {
		return 0, nil, err
	}
	now := c.kdcNow().UTC()
	pac, err := newPAPACRequest()
	if err != nil {
		return 0, nil, err
	}
	req := messages.ASReq{KDCReqFields: messages.KDCReqFields{
		PVNO:    iana.PVNO,
		MsgType: msgtype.KRB_AS_REQ,
		PAData:  types.PADataSequence{pac},
		ReqBody: messages.KDCReqBody{
			KDCOptions: types.NewKrbFlags(),
			CName:      types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: []string{c.cfg.Service}},
			Realm:      c.realm,
			SName:      types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", c.realm}},
			Till:       now.Add(c.cfg.TicketLifetime).Truncate(time.Second),
			Nonce:      nonce,
			EType:      c.cfg.Etypes,
		},
	}}
	types.SetFlags(&req.ReqBody.KDCOptions, []int{flags.Forwardable, flags.Renewable, flags.Canonicalize})
	req.ReqBody.RTime = now.Add(c.cfg.RenewLifetime).Truncate(time.Second)
	if lt != nil {
		proof := encryptedTimestamp
		if armor != nil {
			proof = armor.encryptedChallenge
		}
		ts, err := proof(lt.key, now)
		if err != nil {
			return 0, nil, err
		}
		req.PAData = append(types.PADataSequence{ts}, req.PAData...)
	}
	if armor != nil {
		if err := armor.wrap(&req); err != nil {
			return 0, nil, fmt.Errorf("s4u: armour the AS-REQ: %w", err)
		}
	}
	b, err := req.Marshal()
	if err != nil {
		return 0, nil, fmt.Errorf("s4u: marshal AS-REQ: %w", err)
	}
	return nonce, b, nil
}

// newArmor returns the FAST armour for one AS exchange, made from the armor
// account's TGT; nil without an armor account.
func (c *Client) newArmor(ctx context.Context) (*fastArmor, error) {
	if c.armor == nil {
		return nil, nil
	}
	tgt, err := c.armor.TGT(ctx, c.realm)
	if err != nil {
		return nil, fmt.Errorf("s4u: %s: the armor account %s gets no TGT, so the service account's AS exchange cannot be armoured (FAST): %w",
			StageASReq, c.cfg.ArmorAccount, err)
	}
	a, err := newFASTArmor(tgt, c.kdcNow())
	if err != nil {
		return nil, fmt.Errorf("s4u: %s: %w", StageASReq, err)
	}
	return a, nil
}

// unwrapFASTError replaces an armoured KRB-ERROR by the KDC's real error
// inside it (PA-FX-ERROR). A KRB-ERROR without FAST (a KDC that refused
// the armour itself, has no FAST, or an answer forged on the path) is
// returned as it is with plain set: the caller must not act on it.
func unwrapFASTError(armor *fastArmor, err error, nonce int) (_ error, plain bool) {
	var ke *kdc.KRBError
	if !errors.As(err, &ke) {
		return err, false
	}
	inner, uerr := armor.unwrapError(ke.Msg, nonce)
	if errors.Is(uerr, errNoFASTReply) {
		return err, true
	}
	if uerr != nil {
		return fmt.Errorf("s4u: %s: the KDC's armoured error (%d) is unreadable: %w", StageASReq, ke.Code(), uerr), false
	}
	return &kdc.KRBError{Realm: ke.Realm, KDC: ke.KDC, Msg: inner}, false
}

// unarmouredError is the *KDCError of a KRB-ERROR that came outside the
// armour of an armoured AS-REQ (KDCError.Unarmoured).
func unarmouredError(realm string, err error) error {
	err = newKDCError(StageASReq, realm, err)
	var ke *KDCError
	if errors.As(err, &ke) {
		ke.Unarmoured = true
	}
	return err
}

func encryptedTimestamp(key types.EncryptionKey, now time.Time) (types.PAData, error) {
	ts, err := asn1.Marshal(types.PAEncTSEnc{PATimestamp: now.Truncate(time.Second), PAUSec: now.Nanosecond() / 1000})
	if err != nil {
		return types.PAData{}, fmt.Errorf("s4u: marshal PA-ENC-TS-ENC: %w", err)
	}
	ed, err := crypto.GetEncryptedData(ts, key, keyusage.AS_REQ_PA_ENC_TIMESTAMP, 0)
	if err != nil {
		return types.PAData{}, fmt.Errorf("s4u: encrypt timestamp: %w", err)
	}
	b, err := ed.Marshal()
	if err != nil {
		return types.PAData{}, fmt.Errorf("s4u: marshal PA-ENC-TIMESTAMP: %w", err)
	}
	return types.PAData{PADataType: patype.PA_ENC_TIMESTAMP, PADataValue: b}, nil
}

// etypeInfoFromError returns the ETYPE-INFO2 entries of a PREAUTH_REQUIRED
// error's e-data (METHOD-DATA); nil when there are none.
func etypeInfoFromError(edata []byte) types.ETypeInfo2 {
	var md types.PADataSequence
	if len(edata) == 0 || md.Unmarshal(edata) != nil {
		return nil
	}
	return etypeInfo(md)
}

func etypeInfo(pas types.PADataSequence) types.ETypeInfo2 {
	for _, pa := range pas {
		if pa.PADataType != patype.PA_ETYPE_INFO2 {
			continue
		}
		var info types.ETypeInfo2
		if err := info.Unmarshal(pa.PADataValue); err == nil {
			return info
		}
	}
	return nil
}

// deriveKey derives the service account key for the first etype in our
// preference list that the KDC offered (the first we prefer when it offered
// none), with the KDC's salt or the default salt REALM+name.
func (c *Client) deriveKey(ctx context.Context, info types.ETypeInfo2, realm string) (*longTermKey, error) {
	entry := types.ETypeInfo2Entry{EType: c.cfg.Etypes[0]}
	found := len(info) == 0
	for _, want := range c.cfg.Etypes {
		i := slices.IndexFunc(info, func(e types.ETypeInfo2Entry) bool { return e.EType == want })
		if i >= 0 {
			entry, found = info[i], true
			break
		}
	}
	if !found {
		return nil, &KDCError{
			Code: errorcode.KDC_ERR_ETYPE_NOSUPP, Name: CodeName(errorcode.KDC_ERR_ETYPE_NOSUPP),
			Hint: Hint(StageASReq, errorcode.KDC_ERR_ETYPE_NOSUPP), Stage: StageASReq, Realm: realm,
		}
	}
	return c.keyFor(ctx, entry, realm)
}

// keyFor derives the key for one ETYPE-INFO2 entry. The entry comes from an
// unauthenticated KDC message: its iteration count is bounded and the
// derivation stops with ctx (stringToKey).
func (c *Client) keyFor(ctx context.Context, entry types.ETypeInfo2Entry, realm string) (*longTermKey, error) {
	et, err := usableEtype(entry.EType)
	if err != nil {
		return nil, fmt.Errorf("s4u: %s: %w", StageASReq, err)
	}
	salt := entry.Salt
	if salt == "" {
		salt = realm + c.cfg.Service
	}
	s2k := et.GetDefaultStringToKeyParams()
	if len(entry.S2KParams) == 4 {
		s2k = hex.EncodeToString(entry.S2KParams)
	}
	if cur := c.cachedKey(); cur != nil && cur.key.KeyType == entry.EType && cur.salt == salt && cur.s2k == s2k {
		return cur, nil
	}
	k, err := stringToKey(ctx, entry.EType, c.cfg.Password, salt, s2k)
	if err != nil {
		return nil, fmt.Errorf("s4u: %s: derive the service account key: %w", StageASReq, err)
	}
	return &longTermKey{key: types.EncryptionKey{KeyType: entry.EType, KeyValue: k}, salt: salt, s2k: s2k}, nil
}

// replyKey returns the key that opens the AS-REP: the pre-authentication key
// when the etypes agree, else one derived from the reply's ETYPE-INFO2.
func (c *Client) replyKey(ctx context.Context, lt *longTermKey, r *kdcReply) (*longTermKey, error) {
	if lt != nil && lt.key.KeyType == r.EncPart.EType {
		return lt, nil
	}
	entry := types.ETypeInfo2Entry{EType: r.EncPart.EType}
	for _, e := range etypeInfo(r.PAData) {
		if e.EType == r.EncPart.EType {
			entry = e
		}
	}
	return c.keyFor(ctx, entry, c.realm)
}

func (c *Client) cachedKey() *longTermKey {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	return c.key
}

func (c *Client) storeKey(k *longTermKey) {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	c.key = k
}
