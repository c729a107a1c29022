package s4u

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/etype"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"

	"github.com/segmesh/segmesh/pkg/kdc"
)

// tgsExchange builds, sends and opens one TGS exchange. The authenticator
// time is the KDC's (kdcNow), later than any sent before; a
// KRB_AP_ERR_SKEW is retried once with the KDC's time.
func (c *Client) tgsExchange(ctx context.Context, stage Stage, kdcRealm string, r *tgsRequest) (*Ticket, error) {
	for try := 0; ; try++ {
		r.now = c.stamp.Next(c.kdcNow())
		req, wire, err := r.build()
		if err != nil {
			return nil, fmt.Errorf("s4u: %s: %w", stage, err)
		}
		rep, err := c.exchange(ctx, stage, kdcRealm, wire)
		if err != nil {
			if try == 0 && c.adoptKDCTime(stage, kdcRealm, err) {
				continue
			}
			return nil, newKDCError(stage, kdcRealm, err)
		}
		t, err := openTGSRep(rep, r.tgt.SessionKey, req.ReqBody.Nonce, r.etypes)
		if err != nil {
			return nil, c.replyError(stage, kdcRealm, err)
		}
		return t, nil
	}
}

// kdcNow is the time to put in messages to KDCs: ours moved by the offset a
// KRB_AP_ERR_SKEW taught.
func (c *Client) kdcNow() time.Time { return c.now().Add(time.Duration(c.offset.Load())) }

// adoptKDCTime reports whether err is a KRB_AP_ERR_SKEW carrying the KDC's
// time, and if so keeps the difference to our clock for the times sent to
// KDCs, as MIT's libkrb5 does (kdc_timesync): the request can be retried
// once. The KRB-ERROR is not authenticated; a forged time only makes the
// next requests fail with KRB_AP_ERR_SKEW again, which then carries the
// real KDC's time.
func (c *Client) adoptKDCTime(stage Stage, realm string, err error) bool {
	var ke *kdc.KRBError
	if !errors.As(err, &ke) || ke.Code() != errorcode.KRB_AP_ERR_SKEW || ke.Msg.STime.IsZero() {
		return false
	}
	kdcTime := ke.Msg.STime.Add(time.Duration(ke.Msg.Susec) * time.Microsecond)
	off := kdcTime.Sub(c.now())
	c.offset.Store(int64(off))
	c.log.Warn("KDC reports clock skew; using its time for Kerberos requests (synchronise this host's clock with NTP)",
		"stage", string(stage), "realm", realm, "kdc", ke.KDC, "offset", off.Round(time.Millisecond).String())
	return true
}

// usableEtype returns gokrb5's implementation of an etype this package can
// use, or an error naming it. aes256-cts-hmac-sha384-192 (20) is refused:
// gokrb5 v8.4.4 gives it a 24-byte key where RFC 8009 has 32, so no
// exchange with it works ("incorrect keysize").
func usableEtype(e int32) (etype.EType, error) {
	if e == etypeID.AES256_CTS_HMAC_SHA384_192 {
		return nil, errors.New("etype 20 (aes256-cts-hmac-sha384-192) is not supported: gokrb5 v8.4.4 implements it with the wrong key size; use 18 (aes256-cts-hmac-sha1-96) or 17, which AD offers")
	}
	et, err := crypto.GetEtype(e)
	if err != nil {
		return nil, fmt.Errorf("etype %d is not supported: %w", e, err)
	}
	return et, nil
}

func (c *Client) exchange(ctx context.Context, stage Stage, realm string, wire []byte) ([]byte, error) {
	rep, err := c.cfg.Exchanger.Exchange(ctx, realm, wire)
	if h := c.cfg.Hooks.OnExchange; h != nil {
		herr := err
		if err != nil {
			herr = newKDCError(stage, realm, err)
		}
		h(stage, realm, herr)
	}
	return rep, err
}
