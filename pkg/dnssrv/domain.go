package dnssrv

import (
	"fmt"
	"strings"
)

// InDomain reports whether host is domain or a name below it (DNS names,
// any case, a trailing dot ignored). DNS answers are not authenticated:
// the KDCs and Global Catalogs an answer names are used only when they are
// inside the domain asked about, so that a spoofed answer cannot send the
// service account's bind or pre-authentication to a host of its own
// naming (whose TLS certificate any trusted CA could have issued).
func InDomain(host, domain string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	return d != "" && (h == d || strings.HasSuffix(h, "."+d))
}

// Within returns the answer with only its targets inside domain (InDomain),
// and the hosts it left out, in DNS order. When no target inside the domain
// resolved, the error is an *OutsideDomainError (or the *LookupError of an
// answer that had no usable target at all).
func (a Answer) Within(domain string) (Answer, []string, error) {
	in := Answer{Query: a.Query, Server: a.Server}
	var outside []string
	usable := 0
	for _, t := range a.Targets {
		if !InDomain(t.Host, domain) {
			outside = append(outside, t.Host)
			continue
		}
		if len(t.IPs) > 0 {
			usable++
		}
		in.Targets = append(in.Targets, t)
	}
	if usable > 0 {
		return in, outside, nil
	}
	if len(outside) == 0 {
		return in, nil, &LookupError{Query: a.Query, Server: a.Server, Err: fmt.Errorf("no record names a host inside %s that resolves", strings.ToLower(strings.TrimSuffix(domain, ".")))}
	}
	return in, outside, &OutsideDomainError{Query: a.Query, Server: a.Server, Domain: strings.ToLower(strings.TrimSuffix(domain, ".")), Hosts: outside}
}

// OutsideDomainError is returned by Answer.Within when the only targets
// that resolved are outside the domain.
type OutsideDomainError struct {
	// Query is the name asked.
	Query string
	// Server is the DNS server asked.
	Server string
	// Domain is the DNS domain the targets must be inside.
	Domain string
	// Hosts are the targets outside it, not used.
	Hosts []string
}

// Error implements error.
func (e *OutsideDomainError) Error() string {
	return fmt.Sprintf("dnssrv: DNS SRV %s from %s names only hosts outside %s (%s), which are not used: DNS answers are not authenticated, and a spoofed answer looks like this",
		e.Query, e.Server, e.Domain, strings.Join(e.Hosts, ", "))
}
