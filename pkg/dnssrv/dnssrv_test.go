package dnssrv_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/dnssrv"
	"github.com/segmesh/segmesh/pkg/dnssrv/dnstest"
)

// TestLookup asks the in-process DNS server through Go's resolver: records
// come in priority order, each with the addresses its host resolves to; a
// host that does not resolve is listed with its error; no usable record is
// a *LookupError naming the query and the server.
func TestLookup(t *testing.T) {
	dns := dnstest.Start(t)
	dns.SetSRV("_kerberos._tcp.CORP.EXAMPLE",
		dnstest.SRV{Target: "dc3.corp.example", Port: 88, Priority: 20, Weight: 100},
		dnstest.SRV{Target: "dc1.corp.example", Port: 88, Priority: 0, Weight: 100},
		dnstest.SRV{Target: "gone.corp.example", Port: 88, Priority: 10, Weight: 100},
		dnstest.SRV{Target: "dc2.corp.example", Port: 1088, Priority: 5, Weight: 0},
	)
	dns.SetA("dc1.corp.example", "127.0.0.11", "127.0.0.12")
	dns.SetA("dc2.corp.example", "127.0.0.13")
	dns.SetA("dc3.corp.example", "127.0.0.14")
	dns.SetSRV("_kerberos._tcp.DEAD.EXAMPLE", dnstest.SRV{Target: "gone.dead.example", Port: 88})
	f, err := dnssrv.New(dns.Addr())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	a, err := f.Lookup(ctx, "kerberos", "tcp", "CORP.EXAMPLE")
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, tg := range a.Targets {
		hosts = append(hosts, tg.Host)
	}
	if want := []string{"dc1.corp.example", "dc2.corp.example", "gone.corp.example", "dc3.corp.example"}; !slices.Equal(hosts, want) {
		t.Fatalf("targets %v, want %v (priority order)", hosts, want)
	}
	if want := []string{"127.0.0.11:88", "127.0.0.12:88", "127.0.0.13:1088", "127.0.0.14:88"}; !slices.Equal(a.Addrs(), want) {
		t.Fatalf("Addrs() = %v, want %v", a.Addrs(), want)
	}
	if a.Targets[2].Err == nil {
		t.Error("gone.corp.example has no error")
	}
	for _, w := range []string{"_kerberos._tcp.CORP.EXAMPLE from " + dns.Addr(), "dc1.corp.example:88 (priority 0, weight 100) = 127.0.0.11, 127.0.0.12", "gone.corp.example:88 (priority 10, weight 100) does not resolve"} {
		if !strings.Contains(a.String(), w) {
			t.Errorf("String() lacks %q: %s", w, a)
		}
	}

	for _, name := range []string{"NOWHERE.EXAMPLE", "DEAD.EXAMPLE"} {
		_, err := f.Lookup(ctx, "kerberos", "tcp", name)
		var le *dnssrv.LookupError
		if !errors.As(err, &le) || le.Query != "_kerberos._tcp."+name || le.Server != dns.Addr() {
			t.Errorf("%s: err = %v, want a LookupError naming the query and the server", name, err)
		}
	}
}

// TestWeights: within one priority every record is used, the heavier one
// first most of the time (RFC 2782's weighted shuffle, done by net).
func TestWeights(t *testing.T) {
	dns := dnstest.Start(t)
	dns.SetSRV("_kerberos._tcp.W.EXAMPLE",
		dnstest.SRV{Target: "light.w.example", Port: 88, Weight: 1},
		dnstest.SRV{Target: "heavy.w.example", Port: 88, Weight: 99})
	dns.SetA("light.w.example", "127.0.0.21")
	dns.SetA("heavy.w.example", "127.0.0.22")
	f, err := dnssrv.New(dns.Addr())
	if err != nil {
		t.Fatal(err)
	}
	heavyFirst := 0
	const rounds = 40
	for range rounds {
		a, err := f.Lookup(context.Background(), "kerberos", "tcp", "W.EXAMPLE")
		if err != nil || len(a.Targets) != 2 {
			t.Fatalf("Lookup = %+v, %v", a, err)
		}
		if a.Targets[0].Host == "heavy.w.example" {
			heavyFirst++
		}
	}
	// P(heavy first) = 0.99 per round: fewer than half is beyond chance.
	if heavyFirst < rounds/2 {
		t.Fatalf("the weight-99 record came first %d of %d times", heavyFirst, rounds)
	}
}

func TestNormalizeServer(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "10.0.0.10", want: "10.0.0.10:53"},
		{in: "10.0.0.10:5353", want: "10.0.0.10:5353"},
		{in: "dns.corp.example", want: "dns.corp.example:53"},
		{in: "[::1]:53", want: "[::1]:53"},
		{in: "::1", want: "[::1]:53"},
		{in: "", bad: true},
		{in: " 10.0.0.10", bad: true},
		{in: "10.0.0.10:0", bad: true},
		{in: "10.0.0.10:dns", bad: true},
		{in: "http://10.0.0.10", bad: true},
	}
	for _, tt := range tests {
		got, err := dnssrv.NormalizeServer(tt.in)
		if tt.bad {
			if err == nil || !strings.Contains(err.Error(), dnssrv.KeyDNSServer) {
				t.Errorf("NormalizeServer(%q) = %q, %v; want an error naming %s", tt.in, got, err, dnssrv.KeyDNSServer)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeServer(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
