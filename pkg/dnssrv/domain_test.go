package dnssrv_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/segmesh/segmesh/pkg/dnssrv"
)

// TestInDomain: the domain itself and names below it are inside, in any
// case and with a trailing dot; a name that only ends with the domain's
// letters, or carries it as a label elsewhere, is not; an empty domain has
// nothing inside it.
func TestInDomain(t *testing.T) {
	for _, tc := range []struct {
		host, domain string
		want         bool
	}{
		{"dc1.lab.test", "LAB.TEST", true},
		{"DC1.Lab.Test.", "lab.test", true},
		{"lab.test", "LAB.TEST.", true},
		{"a.b.lab.test", "lab.test", true},
		{"evillab.test", "lab.test", false},
		{"lab.test.attacker.example", "lab.test", false},
		{"kdc.attacker.example", "lab.test", false},
		{"test", "lab.test", false},
		{"dc1.lab.test", "", false},
	} {
		if got := dnssrv.InDomain(tc.host, tc.domain); got != tc.want {
			t.Errorf("InDomain(%q, %q) = %v, want %v", tc.host, tc.domain, got, tc.want)
		}
	}
}

// TestWithin: targets outside the domain are dropped and listed; with none
// inside that resolves, the error is an *OutsideDomainError naming the
// query, the domain and the hosts left out, or a *LookupError when nothing
// was outside either.
func TestWithin(t *testing.T) {
	in := dnssrv.Target{Host: "dc1.lab.test", Port: 88, IPs: []string{"127.0.0.2"}}
	gone := dnssrv.Target{Host: "gone.lab.test", Port: 88}
	evil := dnssrv.Target{Host: "kdc.attacker.example", Port: 88, IPs: []string{"127.0.0.66"}}
	ans := func(ts ...dnssrv.Target) dnssrv.Answer {
		return dnssrv.Answer{Query: "_kerberos._tcp.LAB.TEST", Server: "127.0.0.2:53", Targets: ts}
	}

	a, outside, err := ans(evil, in).Within("LAB.TEST")
	if err != nil || !slices.Equal(a.Addrs(), []string{"127.0.0.2:88"}) || !slices.Equal(outside, []string{"kdc.attacker.example"}) {
		t.Fatalf("mixed answer: %v, outside %v, err %v", a, outside, err)
	}

	_, outside, err = ans(evil, gone).Within("LAB.TEST")
	var oe *dnssrv.OutsideDomainError
	if !errors.As(err, &oe) || oe.Domain != "lab.test" || oe.Query != "_kerberos._tcp.LAB.TEST" || !slices.Equal(oe.Hosts, []string{"kdc.attacker.example"}) || !slices.Equal(outside, oe.Hosts) {
		t.Fatalf("only outside: outside %v, err %v, want an OutsideDomainError", outside, err)
	}

	_, _, err = ans(gone).Within("LAB.TEST")
	var le *dnssrv.LookupError
	if !errors.As(err, &le) || errors.As(err, &oe) {
		t.Fatalf("nothing usable inside, nothing outside: err %v, want a LookupError", err)
	}
}
