package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
)

// ErrNotLoopback is returned (wrapped) for a target or source address outside
// 127.0.0.0/8 and ::1: segload only ever loads this machine.
var ErrNotLoopback = errors.New("loadgen: not a loopback address")

// Resolver looks a host name up; net.DefaultResolver.LookupIPAddr fits.
type Resolver func(ctx context.Context, host string) ([]net.IPAddr, error)

// CheckLoopbackURL refuses a URL whose host is not a loopback address or
// resolves to any address that is not loopback.
func CheckLoopbackURL(ctx context.Context, raw string, resolve Resolver) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("loadgen: parse target %q: %w", raw, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("loadgen: target %q: scheme must be https or http", raw)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("loadgen: target %q has no host", raw)
	}
	return CheckLoopbackHost(ctx, host, resolve)
}

// CheckLoopbackHost refuses a host that is not, or does not resolve only to,
// loopback addresses.
func CheckLoopbackHost(ctx context.Context, host string, resolve Resolver) error {
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("%w: %s", ErrNotLoopback, host)
		}
		return nil
	}
	if resolve == nil {
		return fmt.Errorf("%w: %s is a name and no resolver was given", ErrNotLoopback, host)
	}
	addrs, err := resolve(ctx, host)
	if err != nil {
		return fmt.Errorf("loadgen: resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%w: %s resolves to nothing", ErrNotLoopback, host)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return fmt.Errorf("%w: %s resolves to %s", ErrNotLoopback, host, a.IP)
		}
	}
	return nil
}

// ParseSources parses comma-separated source IPs and refuses any that is not
// loopback.
func ParseSources(list []string) ([]net.IP, error) {
	var out []net.IP
	for _, s := range list {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("loadgen: source address %q is not an IP", s)
		}
		if !ip.IsLoopback() {
			return nil, fmt.Errorf("%w: source %s", ErrNotLoopback, s)
		}
		out = append(out, ip)
	}
	return out, nil
}
