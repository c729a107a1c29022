package certmap

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/segmesh/segmesh/pkg/dnssrv"
)

// gcRefresh is how long Global Catalogs found in DNS are used before DNS
// is asked again (and after every one failed, at the next dial).
const gcRefresh = 5 * time.Minute

// dialTarget is one directory server to dial: its address and the name
// its TLS certificate must carry.
type dialTarget struct {
	addr, serverName string
}

// gcFinder keeps the Global Catalogs found by _gc._tcp.DOMAIN for a URL
// without a host.
type gcFinder struct {
	dns     *dnssrv.Finder
	domain  string
	port    int  // the URL's port (or the GC default), used for every target
	usePort bool // the URL named a port: SRV's port is not used

	mu         sync.Mutex
	last       dialTarget // the last server that took a bind
	answer     dnssrv.Answer
	targets    []dialTarget
	resolvedAt time.Time
	stale      bool
}

// Discovered returns the last DNS answer that gave the Global Catalogs;
// ok is false when the URL has a host or DNS has not answered yet.
func (m *Mapper) Discovered() (a dnssrv.Answer, ok bool) {
	if m.gc == nil {
		return dnssrv.Answer{}, false
	}
	m.gc.mu.Lock()
	defer m.gc.mu.Unlock()
	return m.gc.answer, !m.gc.resolvedAt.IsZero()
}

// dialTargets returns the servers to dial in order: the URL's host, or the
// Global Catalogs DNS names (looked up again after gcRefresh or after all
// failed; a failed lookup keeps the last good list).
func (m *Mapper) dialTargets(ctx context.Context) ([]dialTarget, error) {
	if m.gc == nil {
		return []dialTarget{{addr: m.ep.Addr(), serverName: m.ep.Host}}, nil
	}
	g := m.gc
	g.mu.Lock()
	defer g.mu.Unlock()
	now := m.now()
	if len(g.targets) > 0 && !g.stale && now.Sub(g.resolvedAt) < gcRefresh {
		return g.targets, nil
	}
	a, err := g.dns.Lookup(ctx, "gc", "tcp", g.domain)
	if err != nil {
		if len(g.targets) > 0 {
			m.log.WarnContext(ctx, "Global Catalog lookup in DNS failed, keeping the ones found before", "error", err)
			g.resolvedAt, g.stale = now, false
			return g.targets, nil
		}
		return nil, &DirectoryError{Op: "find the Global Catalogs for", Endpoint: m.ep.String(), Err: err,
			Hint: "publish _gc._tcp." + g.domain + " SRV records, name the DNS server that holds them in segmesh.dnsServer, or write a host in cert.mapping.ldap.url"}
	}
	var targets []dialTarget
	var outside []string
	for _, t := range a.Targets {
		if !dnssrv.InDomain(t.Host, g.domain) {
			// DNS is not authenticated: a server outside the domain could
			// show a certificate for its own name from any CA the gateway
			// trusts (with no ldapCaFile, every public CA), and would get
			// the service account's bind.
			outside = append(outside, t.Host)
			continue
		}
		port := int(t.Port)
		if g.usePort || m.ep.TLS {
			// SRV publishes the plain GC port; GC over TLS is 3269 on the
			// same hosts.
			port = g.port
		}
		for _, ip := range t.IPs {
			targets = append(targets, dialTarget{addr: net.JoinHostPort(ip, strconv.Itoa(port)), serverName: t.Host})
		}
	}
	if len(outside) > 0 {
		m.log.WarnContext(ctx, "Global Catalogs outside the domain in the DNS answer are not used", "domain", g.domain, "hosts", outside)
	}
	if len(targets) == 0 {
		if len(g.targets) > 0 {
			g.resolvedAt, g.stale = now, false
			return g.targets, nil
		}
		return nil, &DirectoryError{Op: "find the Global Catalogs for", Endpoint: m.ep.String(),
			Err:  fmt.Errorf("DNS answered %s: no target inside %s", a, g.domain),
			Hint: "publish _gc._tcp." + g.domain + " SRV records naming the domain's own Global Catalogs, check segmesh.dnsServer (a spoofed answer looks like this), or write a host in cert.mapping.ldap.url"}
	}
	g.answer, g.targets, g.resolvedAt, g.stale = a, targets, now, false
	m.log.InfoContext(ctx, "Global Catalogs found in DNS", "answer", a.String())
	return targets, nil
}

// GlobalCatalogNote says, for a URL without a host, what DNS returned and
// which Global Catalog took the last bind; "" otherwise (diagnose).
func (m *Mapper) GlobalCatalogNote() string {
	if m.gc == nil {
		return ""
	}
	m.gc.mu.Lock()
	defer m.gc.mu.Unlock()
	if m.gc.resolvedAt.IsZero() {
		return ""
	}
	return fmt.Sprintf("Global Catalog %s (%s) from DNS SRV %s", m.gc.last.serverName, m.gc.last.addr, m.gc.answer)
}

// gcAnswered records the server that took a bind.
func (m *Mapper) gcAnswered(t dialTarget) {
	if m.gc == nil {
		return
	}
	m.gc.mu.Lock()
	defer m.gc.mu.Unlock()
	m.gc.last = t
}

// gcFailed makes the next dial ask DNS again: every Global Catalog failed.
func (m *Mapper) gcFailed() {
	if m.gc == nil {
		return
	}
	m.gc.mu.Lock()
	defer m.gc.mu.Unlock()
	m.gc.stale = true
}

// tlsFor returns the TLS configuration for a target: the configured roots,
// the target's host name.
func (m *Mapper) tlsFor(t dialTarget) *tls.Config {
	c := m.tls.Clone()
	c.ServerName = t.serverName
	return c
}
