package crl

import (
	"bytes"
	"cmp"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
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
func (sc scope) covers(cert *x509.Certificate, dps dpNames) bool {
	if sc.userOnly && cert.IsCA {
		return false
	}
	if len(sc.names) == 0 {
		return true
	}
	for i := range dps.ends {
		// A bisection written out: slices.BinarySearchFunc would move the
		// caller's buffers to the heap.
		name := dps.at(i)
		lo, hi := 0, len(sc.names)
		for lo < hi {
			if m := int(uint(lo+hi) >> 1); compareName(sc.names[m], name) < 0 {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo < len(sc.names) && compareName(sc.names[lo], name) == 0 {
			return true
		}
	}
	return false
}

// compareName compares a scope name with a certificate's name in bytes
// (strings.Compare(s, string(b)) without the conversion).
func compareName(s string, b []byte) int {
	for i := 0; i < len(s) && i < len(b); i++ {
		if s[i] != b[i] {
			return cmp.Compare(s[i], b[i])
		}
	}
	return cmp.Compare(len(s), len(b))
}

// dpNames holds canonical distribution point names end to end in one
// buffer: name i is buf[ends[i-1]:ends[i]]. The handshake's verdict reads
// a certificate's names into one on its stack, so a partitioned issuer's
// check allocates nothing (benchmarks.md, "Partitioned CRLs at the
// handshake").
type dpNames struct {
	buf  []byte
	ends []int
}

func (n dpNames) at(i int) []byte {
	start := 0
	if i > 0 {
		start = n.ends[i-1]
	}
	return n.buf[start:n.ends[i]]
}

func (n dpNames) strings() []string {
	out := make([]string, len(n.ends))
	for i := range n.ends {
		out[i] = string(n.at(i))
	}
	return out
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
	n, err := dpNames{}.read(dpn)
	if err != nil {
		return nil, err
	}
	return n.strings(), nil
}

// read appends the canonical names of a DistributionPointName's CHOICE.
// (Value in, value out: stored through a pointer, the buffers would move
// to the heap.)
func (n dpNames) read(dpn cryptobyte.String) (dpNames, error) {
	before := len(n.ends)
	for !dpn.Empty() {
		var v cryptobyte.String
		var tag cbasn1.Tag
		if !dpn.ReadAnyASN1(&v, &tag) {
			return n, errors.New("malformed distribution point name")
		}
		switch tag {
		case cbasn1.Tag(0).Constructed().ContextSpecific(): // fullName GeneralNames
			for !v.Empty() {
				var gn cryptobyte.String
				var gt cbasn1.Tag
				if !v.ReadAnyASN1(&gn, &gt) {
					return n, errors.New("malformed distribution point fullName")
				}
				if gt == cbasn1.Tag(6).ContextSpecific() {
					n.buf = appendCanonicalURI(append(n.buf, "uri:"...), gn)
				} else {
					n.buf = append(strconv.AppendInt(append(n.buf, "gn"...), int64(gt&0x1f), 10), ':')
					n.buf = hex.AppendEncode(n.buf, gn)
				}
				n.ends = append(n.ends, len(n.buf))
			}
		case cbasn1.Tag(1).Constructed().ContextSpecific(): // nameRelativeToCRLIssuer
			n.buf = hex.AppendEncode(append(n.buf, "rdn:"...), v)
			n.ends = append(n.ends, len(n.buf))
		default:
			return n, fmt.Errorf("distribution point name of unknown form (tag %d)", int(tag&0x1f))
		}
	}
	if len(n.ends) == before {
		// Read as no names, it would be a CRL of every certificate.
		return n, errors.New("distribution point that names nothing")
	}
	return n, nil
}

// appendCanonicalURI appends u with the scheme and host in lower case and
// bytes outside 0x21..0x7e escaped, so the names of a CRL and of a
// certificate that differ only there match, and a scope text never holds a
// space. The authority ends at the first '/', '?' or '#' after "://" (RFC
// 3986 3.2), and userinfo before an '@' in it keeps its case: a query,
// fragment or user name that differs in case is another URL.
func appendCanonicalURI(b, u []byte) []byte {
	const upperHex = "0123456789ABCDEF"
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
			b = append(b, '%', upperHex[c>>4], upperHex[c&0xf])
		case (i < schemeEnd || hostStart <= i && i < hostEnd) && 'A' <= c && c <= 'Z':
			b = append(b, c+'a'-'A')
		default:
			b = append(b, c)
		}
	}
	return b
}

// readCert appends the canonical names of cert's CRL distribution points
// (the distributionPoint of each; cRLIssuer-only points name indirect
// CRLs, which segmesh refuses). A malformed extension names none.
func (n dpNames) readCert(cert *x509.Certificate) dpNames {
	none := dpNames{buf: n.buf[:0], ends: n.ends[:0]}
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidCRLDistributionPoints) {
			continue
		}
		in := cryptobyte.String(ext.Value)
		var seq cryptobyte.String
		if !in.ReadASN1(&seq, cbasn1.SEQUENCE) {
			return none
		}
		for !seq.Empty() {
			var dp cryptobyte.String
			var dpn cryptobyte.String
			var present bool
			if !seq.ReadASN1(&dp, cbasn1.SEQUENCE) || !dp.ReadOptionalASN1(&dpn, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) {
				return none
			}
			if !present {
				continue
			}
			var err error
			if n, err = n.read(dpn); err != nil {
				return none
			}
		}
	}
	return n
}

// CertScopeNames returns the distribution point names of cert in the form
// of scope texts, for messages that say which CRL a certificate needs.
func CertScopeNames(cert *x509.Certificate) []string {
	n := dpNames{}.readCert(cert)
	if len(n.ends) == 0 {
		return nil
	}
	return n.strings()
}
