package upn

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLen is the longest UPN accepted, in bytes: Active Directory's
// userPrincipalName has a range-upper of 1024.
const MaxLen = 1024

// UPN is a user principal name split at its '@'.
type UPN struct {
	// User is the part before the '@', as written.
	User string
	// Suffix is the part after the '@', as written (UPN suffixes compare
	// case-insensitively).
	Suffix string
	// Realm is the upper-case Kerberos realm the suffix belongs to; empty
	// when the UPN came from Parse rather than Realms.Resolve.
	Realm string
	// SuffixUnmapped reports that the suffix is neither a configured domain
	// nor mapped by upnSuffixRealms: Realm is then the primary realm, whose
	// KDC resolves the enterprise name itself (an alternative UPN suffix of
	// the forest, AD's uPNSuffixes) or refers it to the user's realm.
	SuffixUnmapped bool
}

// String returns the UPN as user@suffix, the form used as a Kerberos
// enterprise principal name and in userPrincipalName.
func (u UPN) String() string { return u.User + "@" + u.Suffix }

// SyntaxError is returned by Parse for a string that is not a UPN.
type SyntaxError struct {
	// UPN is the string as given.
	UPN string
	// Reason says which rule it breaks.
	Reason string
}

// Error implements error.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("upn: %q is not a user principal name: %s", e.UPN, e.Reason)
}

// Parse splits s into user and suffix. It accepts exactly one '@' with a
// non-empty user and a suffix made of non-empty dot-separated labels, valid
// UTF-8 of at most MaxLen bytes, and no control characters, spaces at either
// end or spaces in the suffix.
func Parse(s string) (UPN, error) {
	bad := func(reason string) (UPN, error) { return UPN{}, &SyntaxError{UPN: s, Reason: reason} }
	switch {
	case s == "":
		return bad("empty")
	case len(s) > MaxLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxLen))
	case !utf8.ValidString(s):
		return bad("not valid UTF-8")
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return bad("contains a control character")
	case strings.TrimSpace(s) != s:
		return bad("starts or ends with a space")
	}
	user, suffix, ok := strings.Cut(s, "@")
	switch {
	case !ok:
		return bad("no '@'")
	case strings.Contains(suffix, "@"):
		return bad("more than one '@'")
	case user == "":
		return bad("empty user before '@'")
	case strings.TrimSpace(user) != user:
		return bad("space next to '@'")
	case suffix == "":
		return bad("empty suffix after '@'")
	case strings.IndexFunc(suffix, unicode.IsSpace) >= 0:
		return bad("space in the suffix")
	}
	for label := range strings.SplitSeq(suffix, ".") {
		if label == "" {
			return bad("empty label in the suffix")
		}
	}
	return UPN{User: user, Suffix: suffix}, nil
}

// Realms matches UPN suffixes to the configured Kerberos realms. It is
// immutable and safe for concurrent use.
type Realms struct {
	bySuffix map[string]string // lower-case suffix → upper-case realm
	domains  []string          // configured realms, upper case, in order
}

// NewRealms returns the matcher for the configured domains (the KCD domain
// list; each is a DNS domain whose realm is its upper-case form) and
// suffixRealms, which maps UPN suffixes that differ from their realm (an
// alternative UPN suffix such as example.com in the LAB.TEST domain) to one
// of those domains. A nil suffixRealms maps nothing extra.
func NewRealms(domains []string, suffixRealms map[string]string) (*Realms, error) {
	if len(domains) == 0 {
		return nil, errors.New("upn: no domain configured: configure at least one KCD domain")
	}
	r := &Realms{bySuffix: make(map[string]string, len(domains)+len(suffixRealms))}
	for _, d := range domains {
		d = strings.TrimSpace(d)
		if _, err := Parse("x@" + d); err != nil {
			return nil, fmt.Errorf("upn: domain %q is not a DNS domain name", d)
		}
		realm := strings.ToUpper(d)
		if slices.Contains(r.domains, realm) {
			return nil, fmt.Errorf("upn: domain %q is configured twice", d)
		}
		r.domains = append(r.domains, realm)
		r.bySuffix[FoldASCII(d)] = realm
	}
	for _, suffix := range sortedKeys(suffixRealms) {
		realm := strings.ToUpper(strings.TrimSpace(suffixRealms[suffix]))
		if _, err := Parse("x@" + suffix); err != nil {
			return nil, fmt.Errorf("upn: UPN suffix %q is not a DNS domain name", suffix)
		}
		if !slices.Contains(r.domains, realm) {
			return nil, fmt.Errorf("upn: UPN suffix %q maps to realm %q, which is not a configured domain (%s)",
				suffix, suffixRealms[suffix], strings.Join(r.domains, ", "))
		}
		key := FoldASCII(suffix)
		if prev, ok := r.bySuffix[key]; ok && prev != realm {
			return nil, fmt.Errorf("upn: UPN suffix %q maps to %s but is the domain %s itself", suffix, realm, prev)
		}
		r.bySuffix[key] = realm
	}
	return r, nil
}

// Domains returns the configured realms, upper case, in configuration order.
func (r *Realms) Domains() []string { return slices.Clone(r.domains) }

// Resolve parses s and sets its Realm from the suffix, compared
// case-insensitively. A suffix in no configured domain and not mapped gets
// the primary realm with SuffixUnmapped set: a Windows KDC resolves
// enterprise names on alternative UPN suffixes itself, so segmesh asks it
// instead of refusing (upnSuffixRealms stays the override). It returns a
// *SyntaxError for a malformed UPN.
func (r *Realms) Resolve(s string) (UPN, error) {
	u, err := Parse(s)
	if err != nil {
		return UPN{}, err
	}
	realm, ok := r.bySuffix[FoldASCII(u.Suffix)]
	if !ok {
		u.Realm, u.SuffixUnmapped = r.domains[0], true
		return u, nil
	}
	u.Realm = realm
	return u, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
