package trust

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Reason says why a client certificate chain was refused.
type Reason int

const (
	// ReasonOther is a failure none of the other reasons describes (see Err).
	ReasonOther Reason = iota
	// ReasonNoCertificate means the device presented no certificate.
	ReasonNoCertificate
	// ReasonNoTrust means the Store trusts nothing (no trust store configured).
	ReasonNoTrust
	// ReasonUnknownAuthority means the chain does not lead to a certificate in the Store.
	ReasonUnknownAuthority
	// ReasonExpired means a certificate of the chain (Cert) has expired.
	ReasonExpired
	// ReasonNotYetValid means a certificate of the chain (Cert) is not valid yet.
	ReasonNotYetValid
	// ReasonWrongUsage means the leaf or an issuer does not allow client authentication
	// (extended key usage).
	ReasonWrongUsage
	// ReasonNotAuthorizedToSign means a certificate that is not a CA signed another one.
	ReasonNotAuthorizedToSign
)

// String returns a short lower-case name for logs and metrics labels.
func (r Reason) String() string {
	switch r {
	case ReasonNoCertificate:
		return "no_certificate"
	case ReasonNoTrust:
		return "no_trust"
	case ReasonUnknownAuthority:
		return "unknown_authority"
	case ReasonExpired:
		return "expired"
	case ReasonNotYetValid:
		return "not_yet_valid"
	case ReasonWrongUsage:
		return "wrong_usage"
	case ReasonNotAuthorizedToSign:
		return "not_authorized_to_sign"
	}
	return "other"
}

// VerifyError is why VerifyClientChain refused a chain, with its evidence. It is for the
// log and `diagnose`; a device gets only a plain refusal.
type VerifyError struct {
	// Reason classifies the failure.
	Reason Reason
	// Cert is the certificate at fault: the leaf, an intermediate or a CA; nil for
	// ReasonNoCertificate and ReasonNoTrust.
	Cert *x509.Certificate
	// Source describes the trust store used (Store.Source).
	Source string
	// Err is crypto/x509's error; nil for ReasonNoCertificate and ReasonNoTrust.
	Err error
}

// Error says what failed and what to look at.
func (e *VerifyError) Error() string {
	subject := ""
	if e.Cert != nil {
		subject = fmt.Sprintf(" %q", e.Cert.Subject.String())
	}
	switch e.Reason {
	case ReasonNoCertificate:
		return "trust: the device presented no client certificate"
	case ReasonNoTrust:
		return "trust: no client certificate is trusted: " + e.Source + " holds no CA"
	case ReasonUnknownAuthority:
		issuer := ""
		if e.Cert != nil {
			issuer = fmt.Sprintf(" (issuer %q)", e.Cert.Issuer.String())
		}
		hint := ""
		if e.Err != nil && strings.Contains(e.Err.Error(), "possibly because") {
			// x509 found a CA of the right name whose key did not verify: a renewed CA.
			hint = " (" + e.Err.Error() + ")"
		}
		return fmt.Sprintf("trust: certificate%s%s does not chain to a CA in %s%s; add its issuing CA to %s", subject, issuer, e.Source, hint, KeyPath)
	case ReasonExpired:
		return fmt.Sprintf("trust: certificate%s expired on %s", subject, e.Cert.NotAfter.UTC().Format(time.RFC3339))
	case ReasonNotYetValid:
		return fmt.Sprintf("trust: certificate%s is not valid before %s", subject, e.Cert.NotBefore.UTC().Format(time.RFC3339))
	case ReasonWrongUsage:
		return fmt.Sprintf("trust: certificate%s is not allowed for client authentication (extended key usage)", subject)
	case ReasonNotAuthorizedToSign:
		return fmt.Sprintf("trust: certificate%s is not a CA but signed the next certificate of the chain", subject)
	}
	return fmt.Sprintf("trust: client certificate%s refused: %v", subject, e.Err)
}

// Unwrap returns crypto/x509's error.
func (e *VerifyError) Unwrap() error { return e.Err }

// VerifyClientChain verifies a device's chain (leaf first, then the intermediates it sent,
// as tls.ConnectionState.PeerCertificates holds it) against store at time now, for client
// authentication (ExtKeyUsageClientAuth; a certificate without extended key usage allows
// any). It returns the verified chains, each ending in a certificate of the store, or a
// *VerifyError saying why not. The edge calls it from tls.Config.VerifyConnection, which,
// unlike VerifyPeerCertificate, also runs on resumed sessions. The Store remembers the
// chains it accepted (verifyCache: reused only while every certificate of them is valid at
// now, never a refusal); callers must not modify the chains returned.
func VerifyClientChain(store *Store, chain []*x509.Certificate, now time.Time) ([][]*x509.Certificate, error) {
	if len(chain) == 0 || chain[0] == nil {
		return nil, &VerifyError{Reason: ReasonNoCertificate}
	}
	if store == nil || store.Empty() {
		source := "no trust store"
		if store != nil {
			source = store.Source()
		}
		return nil, &VerifyError{Reason: ReasonNoTrust, Source: source}
	}
	key := chainKey(chain)
	if chains, ok := store.verified.get(key, chain, store, now); ok {
		return chains, nil
	}
	opts := x509.VerifyOptions{
		Roots:       store.pool,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(chain) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range chain[1:] {
			if c != nil {
				opts.Intermediates.AddCert(c)
			}
		}
	}
	chains, err := chain[0].Verify(opts)
	if err == nil {
		if rememberable(chain, chains) {
			store.verified.put(key, chain, store, chains)
		}
		return chains, nil
	}
	return nil, classify(err, chain, store.Source(), now)
}

// classify maps crypto/x509's error to a VerifyError.
func classify(err error, chain []*x509.Certificate, source string, now time.Time) *VerifyError {
	ve := &VerifyError{Reason: ReasonOther, Cert: chain[0], Source: source, Err: err}
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &invalid):
		if invalid.Cert != nil {
			ve.Cert = invalid.Cert
		}
		switch invalid.Reason {
		case x509.Expired:
			ve.Reason = ReasonExpired
			if now.Before(ve.Cert.NotBefore) {
				ve.Reason = ReasonNotYetValid
			}
		case x509.IncompatibleUsage:
			ve.Reason = ReasonWrongUsage
		case x509.NotAuthorizedToSign:
			ve.Reason = ReasonNotAuthorizedToSign
		}
	case errors.As(err, &unknown):
		ve.Reason = ReasonUnknownAuthority
		if unknown.Cert != nil {
			ve.Cert = unknown.Cert
		}
		// x509 reports an issuer that is not a CA only as a hint inside
		// UnknownAuthorityError; find it among the certificates the device sent.
		for _, p := range chain[1:] {
			var cv x509.ConstraintViolationError
			if p != nil && bytes.Equal(p.RawSubject, ve.Cert.RawIssuer) && errors.As(ve.Cert.CheckSignatureFrom(p), &cv) {
				ve.Reason, ve.Cert = ReasonNotAuthorizedToSign, p
				break
			}
		}
	}
	return ve
}
