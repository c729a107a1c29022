package crl

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Verify checks the CRL's signature against the trusted CA certificates.
// Candidates are the CAs whose subject equals the CRL issuer and, when both
// carry one, whose subject key id equals the CRL's authority key id; each is
// tried in turn. It returns the CA that signed the CRL, or an *Error of kind
// KindUntrusted (no candidate) or KindSignature (no candidate verifies; the
// last failure is wrapped).
func (c *CRL) Verify(trusted []*x509.Certificate) (*x509.Certificate, error) {
	h := c.Header
	var lastErr error
	candidates := 0
	for _, ca := range trusted {
		if ca == nil || !bytes.Equal(ca.RawSubject, h.RawIssuer) {
			continue
		}
		if len(h.AuthorityKeyId) > 0 && len(ca.SubjectKeyId) > 0 && !bytes.Equal(h.AuthorityKeyId, ca.SubjectKeyId) {
			continue
		}
		candidates++
		if err := h.CheckSignatureFrom(ca); err != nil {
			lastErr = err
			continue
		}
		return ca, nil
	}
	if candidates == 0 {
		return nil, &Error{Kind: KindUntrusted, Issuer: h.Issuer.String(),
			Err: fmt.Errorf("no trusted CA has this subject and key id %x; add the issuing CA to the trust store", h.AuthorityKeyId)}
	}
	if lastErr == nil {
		lastErr = errors.New("no candidate verified")
	}
	return nil, &Error{Kind: KindSignature, Issuer: h.Issuer.String(),
		Err: fmt.Errorf("%d trusted CA(s) of that name tried: %w", candidates, lastErr)}
}

// Index returns the CRL's entries as the Index of the issuer signer (the CA
// Verify returned; nil keys the index by the CRL's own issuer name and
// authority key id), from source. The first call builds the index; later
// calls share it with a new description.
func (c *CRL) Index(signer *x509.Certificate, source string, fetchedAt time.Time) *Index {
	h := c.Header
	keyID := h.AuthorityKeyId
	if len(keyID) == 0 && signer != nil {
		keyID = signer.SubjectKeyId
	}
	raw := h.RawIssuer
	if signer != nil {
		raw = signer.RawSubject
	}
	m := Meta{
		Key:        KeyOf(raw, keyID),
		Issuer:     h.Issuer.String(),
		Source:     source,
		Number:     h.Number,
		ThisUpdate: h.ThisUpdate,
		NextUpdate: h.NextUpdate,
		FetchedAt:  fetchedAt,
		Partition:  c.partition,
	}
	if c.built == nil {
		c.built = c.b.Build(m)
		c.b = nil
		return c.built
	}
	return c.built.WithMeta(m)
}

// Compare orders two CRLs of one issuer, returning -1, 0 or +1 when a is
// older than, as new as, or newer than b: by CRL number when both carry one,
// then by thisUpdate.
func Compare(a, b Meta) int {
	if a.Number != nil && b.Number != nil {
		if c := a.Number.Cmp(b.Number); c != 0 {
			return c
		}
	}
	return a.ThisUpdate.Compare(b.ThisUpdate)
}
