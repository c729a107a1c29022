package negotiate

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/segmesh/segmesh/pkg/krbcrypt"
)

// ErrReplyMismatch is wrapped by VerifyReply's error when the acceptor's
// reply does not prove it holds the ticket's session key for this
// authenticator.
var ErrReplyMismatch = errors.New("negotiate: the server's mutual-authentication reply does not match")

// HeaderStamped is HeaderBound that also returns the authenticator's time
// (ctime and cusec), which the acceptor's AP-REP must echo (VerifyReply).
func (b *Builder) HeaderStamped(cb Binding) (string, time.Time, error) {
	p, err := b.plan(cb)
	if err != nil {
		return "", time.Time{}, err
	}
	h, err := b.header(&p)
	return h, p.now, err
}

// VerifyReply checks the value of a "WWW-Authenticate: Negotiate <token>"
// answer to a header made at sent (HeaderStamped): a SPNEGO NegTokenResp
// (or a bare Kerberos GSS token) carrying an AP-REP whose encrypted part
// (key usage 12) opens with the session key and echoes the authenticator's
// ctime and cusec (RFC 4120 section 3.2.5, RFC 4121 section 4.1). Errors
// about a reply that decodes but does not match wrap ErrReplyMismatch.
func (b *Builder) VerifyReply(value string, sent time.Time) error {
	tok, ok := strings.CutPrefix(value, HeaderPrefix)
	if !ok {
		return errors.New("negotiate: not a Negotiate reply")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(tok))
	if err != nil {
		return fmt.Errorf("%w: base64: %v", ErrReplyMismatch, err)
	}
	mech := raw
	var st spnego.SPNEGOToken
	if err := st.Unmarshal(raw); err == nil && st.Resp {
		if st.NegTokenResp.NegState != 0 {
			return fmt.Errorf("%w: SPNEGO state %d, not accept-completed", ErrReplyMismatch, st.NegTokenResp.NegState)
		}
		if len(st.NegTokenResp.ResponseToken) == 0 {
			// accept-completed with no mechanism token: the acceptor sent
			// no AP-REP (gokrb5's acceptor does this). It proves nothing
			// and hides nothing more than an answer with no
			// WWW-Authenticate at all, which is accepted too.
			return nil
		}
		mech = st.NegTokenResp.ResponseToken
	}
	var k5 spnego.KRB5Token
	if err := k5.Unmarshal(mech); err != nil || !k5.IsAPRep() {
		return fmt.Errorf("%w: no AP-REP in the reply (%v)", ErrReplyMismatch, err)
	}
	pt, err := krbcrypt.DecryptEncPart(k5.APRep.EncPart, b.key, keyusage.AP_REP_ENCPART)
	if err != nil {
		return fmt.Errorf("%w: the AP-REP does not open with the session key: %v", ErrReplyMismatch, err)
	}
	var enc messages.EncAPRepPart
	if err := enc.Unmarshal(pt); err != nil {
		return fmt.Errorf("%w: AP-REP encrypted part: %v", ErrReplyMismatch, err)
	}
	if enc.CTime.Unix() != sent.Unix() || enc.Cusec != sent.Nanosecond()/1000 {
		return fmt.Errorf("%w: it echoes time %s.%06d, the authenticator carried %s", ErrReplyMismatch,
			enc.CTime.UTC().Format(time.RFC3339), enc.Cusec, sent.UTC().Format(time.RFC3339Nano))
	}
	return nil
}
