// Package negotiatetest is an Exchange stand-in for tests and benchmarks: an
// HTTP handler that accepts "Authorization: Negotiate" the way IIS does for
// Exchange, including Windows Extended Protection (channel binding).
//
// gokrb5's SPNEGO acceptor verifies the ticket, the authenticator and
// replays, but not the channel binding; Verify adds the check IIS makes with
// Extended Protection set to Accept or Require: the GSS checksum's Bnd must
// be the tls-server-end-point binding of the certificate the server presents
// (negotiate.TLSServerEndPoint), or, with Accept, absent.
package negotiatetest

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/segmesh/segmesh/pkg/negotiate"
)

// ExtendedProtection is IIS's tokenChecking setting of a virtual directory.
type ExtendedProtection int

// IIS's settings.
const (
	// Off ignores channel bindings.
	Off ExtendedProtection = iota
	// Accept ("Allow") accepts a token without a binding and checks one
	// that has it.
	Accept
	// Require refuses a token without the right binding.
	Require
)

// String returns IIS's name for the setting.
func (e ExtendedProtection) String() string {
	return [...]string{"None", "Allow", "Require"}[e]
}

// ErrBinding is wrapped by Verify's error for a missing or wrong channel
// binding.
var ErrBinding = errors.New("negotiatetest: channel binding refused")

// Verify checks an Authorization header value: a Negotiate token whose
// ticket opens with kt, whose authenticator is fresh and not a replay
// (gokrb5's checks), and whose channel binding suits ep for a server that
// presents cert (nil: plain HTTP, where no binding is expected). It returns
// the client as name@REALM.
func Verify(header string, kt *keytab.Keytab, cert *x509.Certificate, ep ExtendedProtection) (string, error) {
	b64, ok := strings.CutPrefix(header, "Negotiate ")
	if !ok {
		return "", errors.New("negotiatetest: not a Negotiate header")
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("negotiatetest: base64: %w", err)
	}
	var tok spnego.SPNEGOToken
	if err := tok.Unmarshal(raw); err != nil || !tok.Init {
		return "", fmt.Errorf("negotiatetest: not a NegTokenInit: %v", err)
	}
	var k5 spnego.KRB5Token
	if err := k5.Unmarshal(tok.NegTokenInit.MechTokenBytes); err != nil || !k5.IsAPReq() {
		return "", fmt.Errorf("negotiatetest: not a Kerberos AP-REQ: %v", err)
	}
	st := service.NewSettings(kt, service.DecodePAC(false), service.Logger(log.New(io.Discard, "", 0)))
	if ok, _, err := service.VerifyAPREQ(&k5.APReq, st); !ok || err != nil {
		return "", fmt.Errorf("negotiatetest: AP-REQ refused: %v", err)
	}
	a := k5.APReq.Authenticator
	if a.Cksum.CksumType != 0x8003 || len(a.Cksum.Checksum) < 24 {
		return "", errors.New("negotiatetest: authenticator without the GSS checksum")
	}
	var got negotiate.Binding
	copy(got[:], a.Cksum.Checksum[4:20])
	if err := CheckBinding(got, cert, ep); err != nil {
		return "", err
	}
	return strings.Join(a.CName.NameString, "/") + "@" + a.CRealm, nil
}

// CheckBinding decides, as IIS does with Extended Protection ep, whether a
// token whose checksum carries got may authenticate on a connection where
// the server presented cert (nil: plain HTTP, no binding expected). The
// error wraps ErrBinding.
func CheckBinding(got negotiate.Binding, cert *x509.Certificate, ep ExtendedProtection) error {
	if ep == Off {
		return nil
	}
	var want negotiate.Binding
	if cert != nil {
		want = negotiate.TLSServerEndPoint(cert)
	}
	switch {
	case got == want:
		return nil
	case got == negotiate.Binding{} && ep == Accept:
		return nil
	case got == negotiate.Binding{}:
		return fmt.Errorf("%w: Extended Protection is %s and the token carries no binding", ErrBinding, ep)
	default:
		return fmt.Errorf("%w: the token is bound to another channel (not this server's certificate)", ErrBinding)
	}
}

// Acceptor is an http.Handler standing in for Exchange: requests whose
// Negotiate header Verify accepts go to Next with the user in the
// X-Authenticated-User header; others get 401 with "WWW-Authenticate:
// Negotiate" like IIS.
type Acceptor struct {
	// Keytab holds the service key (HTTP/exchange...).
	Keytab *keytab.Keytab
	// Cert is the certificate the server presents; nil for plain HTTP.
	Cert *x509.Certificate
	// EP is the Extended Protection setting.
	EP ExtendedProtection
	// Next answers accepted requests.
	Next http.Handler
}

// ServeHTTP verifies the request and hands it on or refuses it.
func (a *Acceptor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, err := Verify(r.Header.Get("Authorization"), a.Keytab, a.Cert, a.EP)
	if err != nil {
		w.Header().Set("WWW-Authenticate", "Negotiate")
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	r.Header.Set("X-Authenticated-User", user)
	a.Next.ServeHTTP(w, r)
}
