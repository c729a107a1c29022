// Package dnssrv finds domain controllers by DNS SRV records (RFC 2782):
// the KDCs of a realm by _kerberos._tcp.REALM (RFC 4120 section 7.2.3.2),
// the Global Catalogs of a forest by _gc._tcp.DOMAIN, as Windows clients
// do. It serves the request path's KDC step (pkg/kdc) when
// kcd.domains[].domainController is left out, and `segmesh diagnose`, which
// shows what DNS returned.
//
// It asks through Go's own resolver (net.Resolver with PreferGo), optionally
// aimed at one DNS server (segmesh.dnsServer: a site's DNS, a test's), and
// never through LLMNR or NetBIOS, which Go does not speak. The ordering is
// the standard library's: net.Resolver.LookupSRV sorts the records by
// priority and shuffles them by weight within a priority as RFC 2782 says,
// so this package writes no ordering of its own. Target host names are
// resolved through the same resolver, so one DNS server answers both.
package dnssrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/segmesh/segmesh/pkg/problem"
)

// KeyDNSServer is the setting that names the DNS server.
const KeyDNSServer = "segmesh.dnsServer"

// Finder looks up SRV records. It is safe for concurrent use.
type Finder struct {
	server   string
	resolver *net.Resolver
}

// New returns a Finder asking server (host:port, or a host or IP meaning
// port 53); empty means the servers of the system's resolver configuration
// (/etc/resolv.conf), still through Go's resolver. It does no I/O.
func New(server string) (*Finder, error) {
	f := &Finder{}
	if server == "" {
		f.resolver = &net.Resolver{PreferGo: true}
		return f, nil
	}
	addr, err := NormalizeServer(server)
	if err != nil {
		return nil, err
	}
	f.server = addr
	f.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	return f, nil
}

// NormalizeServer returns server as host:port, adding port 53 to a bare
// host or IP address; an error says what is wrong with it and is a
// *problem.SettingError on KeyDNSServer.
func NormalizeServer(server string) (string, error) {
	s := strings.TrimSpace(server)
	if s == "" || s != server {
		return "", problem.OnSetting(KeyDNSServer, fmt.Errorf("dnssrv: %s %q is empty or padded: write the DNS server as an IP address or host:port, for example 10.0.0.10 or 10.0.0.10:53", KeyDNSServer, server))
	}
	if host, port, err := net.SplitHostPort(s); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
			return "", problem.OnSetting(KeyDNSServer, fmt.Errorf("dnssrv: %s %q has no valid host and port: write host:port, for example 10.0.0.10:53", KeyDNSServer, server))
		}
		return s, nil
	}
	host := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if strings.ContainsAny(host, "/[]: ") && net.ParseIP(host) == nil {
		return "", problem.OnSetting(KeyDNSServer, fmt.Errorf("dnssrv: %s %q is not a host or host:port: write the DNS server as an IP address or host:port", KeyDNSServer, server))
	}
	return net.JoinHostPort(host, "53"), nil
}

// Server returns the DNS server asked, or "the system's resolver" when none
// is configured.
func (f *Finder) Server() string {
	if f.server == "" {
		return "the system's resolver"
	}
	return f.server
}

// Target is one SRV record with the addresses its host resolved to.
type Target struct {
	// Host is the record's target, without the trailing dot.
	Host string
	// Port is the record's port.
	Port uint16
	// Priority and Weight are the record's (RFC 2782).
	Priority, Weight uint16
	// IPs are the addresses Host resolved to; empty when it did not.
	IPs []string
	// Err is why Host did not resolve; nil when it did.
	Err error
}

// Addrs returns the target's ip:port addresses, in DNS order.
func (t Target) Addrs() []string {
	out := make([]string, len(t.IPs))
	for i, ip := range t.IPs {
		out[i] = net.JoinHostPort(ip, strconv.Itoa(int(t.Port)))
	}
	return out
}

// String returns "host:port (priority P, weight W) = ip, ip".
func (t Target) String() string {
	s := fmt.Sprintf("%s (priority %d, weight %d)", net.JoinHostPort(t.Host, strconv.Itoa(int(t.Port))), t.Priority, t.Weight)
	if t.Err != nil {
		return s + " does not resolve: " + t.Err.Error()
	}
	return s + " = " + strings.Join(t.IPs, ", ")
}

// Answer is what DNS returned for one SRV query.
type Answer struct {
	// Query is the name asked, _service._proto.name.
	Query string
	// Server is the DNS server asked (Finder.Server).
	Server string
	// Targets are the records in the order to try them (priority, then
	// weight).
	Targets []Target
}

// Addrs returns every target's ip:port addresses in the order to try them.
func (a Answer) Addrs() []string {
	var out []string
	for _, t := range a.Targets {
		out = append(out, t.Addrs()...)
	}
	return out
}

// String returns the query, the server and the targets in order.
func (a Answer) String() string {
	parts := make([]string, len(a.Targets))
	for i, t := range a.Targets {
		parts[i] = t.String()
	}
	return fmt.Sprintf("%s from %s: %s", a.Query, a.Server, strings.Join(parts, "; "))
}

// LookupError is returned when a query gave no usable address.
type LookupError struct {
	// Query is the name asked.
	Query string
	// Server is the DNS server asked.
	Server string
	// Err is the resolver's error, or why the records were unusable.
	Err error
}

// Error implements error.
func (e *LookupError) Error() string {
	return fmt.Sprintf("dnssrv: DNS SRV %s from %s: %v", e.Query, e.Server, e.Err)
}

// Unwrap returns the cause.
func (e *LookupError) Unwrap() error { return e.Err }

// Lookup asks for _service._proto.name and resolves each target. The
// answer lists every record, those whose host did not resolve with their
// error; an error is returned when no record gave an address.
func (f *Finder) Lookup(ctx context.Context, service, proto, name string) (Answer, error) {
	a := Answer{Query: "_" + service + "._" + proto + "." + strings.TrimSuffix(name, "."), Server: f.Server()}
	_, records, err := f.resolver.LookupSRV(ctx, service, proto, name)
	if err != nil && len(records) == 0 {
		return a, &LookupError{Query: a.Query, Server: a.Server, Err: err}
	}
	usable := 0
	for _, r := range records {
		host := strings.TrimSuffix(r.Target, ".")
		if host == "" {
			// RFC 2782: a target of "." means the service is not offered.
			continue
		}
		t := Target{Host: host, Port: r.Port, Priority: r.Priority, Weight: r.Weight}
		ips, err := f.resolver.LookupIPAddr(ctx, r.Target)
		if err != nil {
			t.Err = err
		}
		for _, ip := range ips {
			t.IPs = append(t.IPs, ip.IP.String())
		}
		if len(t.IPs) > 0 {
			usable++
		}
		a.Targets = append(a.Targets, t)
	}
	if usable == 0 {
		return a, &LookupError{Query: a.Query, Server: a.Server, Err: errors.New("no record names a host that resolves")}
	}
	return a, nil
}
