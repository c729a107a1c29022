package crl

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// A CRL's scope (RFC 5280 5.2.5): which of its issuer's certificates it
// covers. A CA may publish several CRLs, each for the certificates that
// name its distribution point (a partitioned CRL), and may publish a CRL
// for user certificates only; CRL numbers run per scope (5.2.3). segmesh
// keeps, per issuer, the newest CRL of every scope, and judges a
// certificate by the CRLs whose scope covers it (6.3.3 (b)(2)): one whose
// Issuing Distribution Point names no distribution point covers every
// certificate; one that names some covers a certificate whose CRL
// distribution points name one of them; onlyContainsUserCerts leaves out
// CA certificates. A serial listed by any CRL of its issuer is revoked,
// whatever the scope: the issuer said so.
//
// A scope is written as [Meta.Partition]: "" for a CRL of every
// certificate, else its tokens sorted and joined by one space: the
// distribution point's names ("uri:" and the URI with its scheme and host
// in lower case and every byte outside 0x21..0x7e as %XX; "rdn:" and the
// hexadecimal DER of a nameRelativeToCRLIssuer; "gnN:" and the hexadecimal
// content of another GeneralName of tag N) and, for onlyContainsUserCerts,
// the token [ScopeUserCertsOnly]. The same text travels to the edge.

// ScopeUserCertsOnly is the scope token of a CRL whose Issuing
// Distribution Point says onlyContainsUserCerts.
const ScopeUserCertsOnly = "onlyContainsUserCerts"

// oidCRLDistributionPoints is the certificate extension 2.5.29.31.
var oidCRLDistributionPoints = asn1.ObjectIdentifier{2, 5, 29, 31}

// scope is a parsed Meta.Partition.
type scope struct {
	userOnly bool
	names    []string // sorted; empty: every distribution point
}

// parseScope reads a Meta.Partition.
func parseScope(p string) scope {
	var sc scope
	for tok := range strings.FieldsSeq(p) {
		if tok == ScopeUserCertsOnly {
			sc.userOnly = true
			continue
		}
		sc.names = append(sc.names, tok)
	}
	return sc
}

// all reports whether the scope is every certificate of the issuer.
func (sc scope) all() bool { return !sc.userOnly && len(sc.names) == 0 }

// covers reports whether a CRL of this scope speaks for cert, whose
// distribution point names are dps.
func (sc scope) covers(cert *x509.Certificate, dps []string) bool {
	if sc.userOnly && cert.IsCA {
		return false
	}
	if len(sc.names) == 0 {
		return true
	}
	for _, n := range dps {
		if _, ok := slices.BinarySearch(sc.names, n); ok {
			return true
		}
	}
	return false
}

// scopeText writes the tokens of a scope as Meta.Partition.
func scopeText(userOnly bool, names []string) string {
	toks := slices.Clone(names)
	if userOnly {
		toks = append(toks, ScopeUserCertsOnly)
	}
	slices.Sort(toks)
	return strings.Join(slices.Compact(toks), " ")
}

// readDPName reads a DistributionPointName's CHOICE (the content of the
// [0] element holding it) into canonical names.
func readDPName(dpn cryptobyte.String) ([]string, error) {
	var names []string
	for !dpn.Empty() {
		var v cryptobyte.String
		var tag cbasn1.Tag
		if !dpn.ReadAnyASN1(&v, &tag) {
			return nil, errors.New("malformed distribution point name")
		}
		switch tag {
		case cbasn1.Tag(0).Constructed().ContextSpecific(): // fullName GeneralNames
			for !v.Empty() {
				var gn cryptobyte.String
				var gt cbasn1.Tag
				if !v.ReadAnyASN1(&gn, &gt) {
					return nil, errors.New("malformed distribution point fullName")
				}
				if gt == cbasn1.Tag(6).ContextSpecific() {
					names = append(names, "uri:"+canonicalURI(gn))
				} else {
					names = append(names, fmt.Sprintf("gn%d:%x", int(gt&0x1f), []byte(gn)))
				}
			}
		case cbasn1.Tag(1).Constructed().ContextSpecific(): // nameRelativeToCRLIssuer
			names = append(names, fmt.Sprintf("rdn:%x", []byte(v)))
		default:
			return nil, fmt.Errorf("distribution point name of unknown form (tag %d)", int(tag&0x1f))
		}
	}
	if len(names) == 0 {
		// Read as no names, it would be a CRL of every certificate.
		return nil, errors.New("distribution point that names nothing")
	}
	return names, nil
}

// canonicalURI lower-cases the scheme and host of u and escapes bytes
// outside 0x21..0x7e, so the names of a CRL and of a certificate that
// differ only there match, and a scope text never holds a space. The
// authority ends at the first '/', '?' or '#' after "://" (RFC 3986 3.2),
// and userinfo before an '@' in it keeps its case: a query, fragment or
// user name that differs in case is another URL.
func canonicalURI(u []byte) string {
	var b strings.Builder
	schemeEnd, hostStart, hostEnd := 0, 0, 0
	if i := bytes.Index(u, []byte("://")); i >= 0 {
		schemeEnd, hostStart, hostEnd = i, i+3, len(u)
		if j := bytes.IndexAny(u[i+3:], "/?#"); j >= 0 {
			hostEnd = i + 3 + j
		}
		if at := bytes.LastIndexByte(u[hostStart:hostEnd], '@'); at >= 0 {
			hostStart += at + 1
		}
	}
	for i, c := range u {
		switch {
		case c < 0x21 || c > 0x7e:
			fmt.Fprintf(&b, "%%%02X", c)
		case (i < schemeEnd || hostStart <= i && i < hostEnd) && 'A' <= c && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// certDPNames returns the canonical names of cert's CRL distribution
// points (the distributionPoint of each; cRLIssuer-only points name
// indirect CRLs, which segmesh refuses). A malformed extension names none.
func certDPNames(cert *x509.Certificate) []string {
	var names []string
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidCRLDistributionPoints) {
			continue
		}
		in := cryptobyte.String(ext.Value)
		var seq cryptobyte.String
		if !in.ReadASN1(&seq, cbasn1.SEQUENCE) {
			return nil
		}
		for !seq.Empty() {
			var dp cryptobyte.String
			if !seq.ReadASN1(&dp, cbasn1.SEQUENCE) {
				return nil
			}
			var dpn cryptobyte.String
			var present bool
			if !dp.ReadOptionalASN1(&dpn, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) {
				return nil
			}
			if !present {
				continue
			}
			n, err := readDPName(dpn)
			if err != nil {
				return nil
			}
			names = append(names, n...)
		}
	}
	return names
}

// CertScopeNames returns the distribution point names of cert in the form
// of scope texts, for messages that say which CRL a certificate needs.
func CertScopeNames(cert *x509.Certificate) []string { return certDPNames(cert) }
