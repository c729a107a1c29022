package diagnose

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
)

// revokedError is a certificate listed on its issuer's CRL.
type revokedError struct {
	cert   *x509.Certificate
	entry  crl.Entry
	source string
}

func (e *revokedError) Error() string {
	s := fmt.Sprintf("certificate %q (serial %s) is revoked on the CRL of %q from %s",
		commonName(e.cert), strings.ToUpper(e.cert.SerialNumber.Text(16)), e.cert.Issuer.String(), e.source)
	if !e.entry.RevokedAt.IsZero() {
		s += " since " + e.entry.RevokedAt.UTC().Format(time.RFC3339)
	}
	if e.entry.Reason != 0 {
		s += fmt.Sprintf(" (reason %d)", e.entry.Reason)
	}
	return s
}

// cdpError collects the distribution points that could not be used.
type cdpError struct{ errs []error }

func (e *cdpError) Error() string {
	parts := make([]string, len(e.errs))
	for i, err := range e.errs {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}
func (e *cdpError) Unwrap() []error { return e.errs }

// crlURLs are the configured distribution points, plus the HTTP ones named
// in the chain when segmesh.crl.useCertificateCdps is set.
func crlURLs(c *config.Config, chain []*x509.Certificate) []string {
	urls := slices.Clone(c.Gateway.CRLURIs)
	if c.Segmesh.CRL.UseCertificateCDPs {
		for _, cert := range chain {
			for _, u := range cert.CRLDistributionPoints {
				if fetch.CheckURL(u) == nil && !slices.Contains(urls, u) {
					urls = append(urls, u)
				}
			}
		}
	}
	return urls
}

func runRevocation(ctx context.Context, st *state) (string, string, error) {
	if st.byUPN() {
		return "", noCertificate, nil
	}
	g := st.cfg.Gateway
	switch {
	case !g.RevocationEnabled:
		return "", "revocation checking is off (" + config.KeyRevocationEnabled + " is false): not checked", nil
	case !st.cfg.RevocationHonoured():
		return "", "revocation checking is ignored: " + config.KeyRevocationEnabled + " is used only when KCD or Require Client Certificate is on", nil
	}
	f := st.opts.Fetcher
	if f == nil {
		f = &fetch.Fetcher{Timeout: 30 * time.Second}
	}
	trusted := slices.Concat(st.store.Certificates(), st.verified)
	var indexes []*crl.Index // per issuer and partition, the newest wins in NewSnapshot
	var problems []error
	var fetched []string
	for _, u := range crlURLs(st.cfg, st.verified) {
		ix, line, err := st.checkCRL(ctx, f, u, trusted)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		indexes = append(indexes, ix)
		fetched = append(fetched, line)
		st.note(StepRevocation, "fetched "+line)
		if next := ix.Meta().NextUpdate; !next.IsZero() && st.opts.Now().After(next) {
			problems = append(problems, &staleError{url: u, next: next})
		}
	}
	// A listed certificate is the answer whatever else failed. The verdict
	// is the edge's own (crl.Snapshot.Decide with the configured policy),
	// so diagnose and the edge cannot disagree on the same CRLs.
	snap := crl.NewSnapshot(0, indexes...)
	policy := crl.Policy{FailClosedOnStale: st.cfg.Segmesh.CRL.FailClosedOnStale, RequireKnownIssuer: st.cfg.Segmesh.CRL.UseCertificateCDPs}
	var unknown []string
	for i, cert := range st.verified {
		if i == len(st.verified)-1 && len(st.verified) > 1 {
			break // the trust anchor itself is not checked
		}
		switch d := snap.Decide(cert, st.opts.Now(), policy); {
		case d.Verdict == crl.Revoked:
			return "", "", &revokedError{cert: cert, entry: d.Info.Entry, source: d.Info.Source}
		case d.Verdict == crl.Stale && d.Refused:
			return "", "", &staleError{url: d.Info.Source, next: d.Info.NextUpdate, refused: true}
		case d.Verdict == crl.Unknown && d.Info.Uncovered && i > 0:
			// The edge checks the device's certificate only.
			unknown = append(unknown, commonName(cert))
		case d.Verdict == crl.Unknown && d.Info.Uncovered:
			return "", "", &unknownIssuerError{cert: cert, uncovered: true}
		case d.Verdict == crl.Unknown && d.Refused:
			return "", "", &unknownIssuerError{cert: cert}
		case d.Verdict == crl.Unknown:
			unknown = append(unknown, commonName(cert))
		}
	}
	if len(problems) > 0 {
		return "", "", &cdpError{errs: problems}
	}
	d := "not revoked; fetched " + strings.Join(fetched, ", ")
	if len(unknown) > 0 {
		d += "; no configured CRL covers the issuer of " + strings.Join(unknown, ", ")
	}
	return d, "", nil
}

// checkCRL fetches the CRL at u, parses it and verifies it against
// trusted, and returns its index and a line saying what was fetched. A
// panic in any of it (a client or parser meeting bytes it did not expect)
// is that distribution point's problem, a *crl.Error of kind
// crl.KindPanic carrying the panic's value cut as the gateway's panic
// lines cut it, its stack sent to Options.Logger: the crl role's refresh
// treats the same CRL so (refresh.guardedAttempt), and a panic ended
// segmesh diagnose instead of reporting a finding (TestAttackPanicOnACRL).
func (st *state) checkCRL(ctx context.Context, f *fetch.Fetcher, u string, trusted []*x509.Certificate) (ix *crl.Index, line string, err error) {
	defer func() {
		if p := recover(); p != nil {
			v := st.recovered("crl check", p, "url", u)
			ix, line, err = nil, "", &crl.Error{URL: u, Kind: crl.KindPanic, Err: errors.New(v)}
		}
	}()
	t0 := time.Now()
	res, err := f.Fetch(ctx, u, fetch.Validators{})
	if err != nil {
		st.note(StepRevocation, "cannot fetch "+u)
		return nil, "", err
	}
	c, err := crl.Parse(res.Body)
	if err != nil {
		return nil, "", crl.WithURL(err, u)
	}
	signer, err := c.Verify(trusted)
	if err != nil {
		return nil, "", crl.WithURL(err, u)
	}
	age := st.opts.Now().Sub(c.Header.ThisUpdate).Round(time.Second)
	line = fmt.Sprintf("%s (%d entries, %d KB, issued %s ago, %s)", u, c.Len(), len(res.Body)/1024, age, time.Since(t0).Round(time.Millisecond))
	return c.Index(signer, u, st.opts.Now()), line, nil
}

// staleError is a CRL past its nextUpdate; refused reports that the edge
// refuses the certificate for it (segmesh.crl.failClosedOnStale).
type staleError struct {
	url     string
	next    time.Time
	refused bool
}

func (e *staleError) Error() string {
	s := fmt.Sprintf("the CRL at %s is past its nextUpdate (%s): the CA has not published a new one", e.url, e.next.UTC().Format(time.RFC3339))
	if e.refused {
		s += "; segmesh.crl.failClosedOnStale is set, so the edge refuses this certificate"
	}
	return s
}

// unknownIssuerError is a certificate whose issuer no fetched CRL covers
// while segmesh.crl.useCertificateCdps makes the edge refuse it.
// uncovered reports that CRLs of the issuer were fetched but each is a
// partition covering other distribution points than the certificate names:
// the edge refuses it whatever useCertificateCdps says.
type unknownIssuerError struct {
	cert      *x509.Certificate
	uncovered bool
}

func (e *unknownIssuerError) Error() string {
	if e.uncovered {
		return fmt.Sprintf("the CRLs fetched for the issuer %q of %q are partitions (an Issuing Distribution Point naming a distribution point) that do not cover it: its distribution points are %s, so the edge refuses the certificate",
			e.cert.Issuer.String(), commonName(e.cert), strings.Join(e.cert.CRLDistributionPoints, ", "))
	}
	return fmt.Sprintf("no CRL covers the issuer %q of %q and segmesh.crl.useCertificateCdps is on, so the edge refuses the certificate", e.cert.Issuer.String(), commonName(e.cert))
}
