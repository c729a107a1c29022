package edge

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/refresh"
	"github.com/segmesh/segmesh/pkg/role"
)

// Timeouts and limits of the device listener and the upstream transport.
// EAS Ping and Sync hang up to HeartbeatInterval/Wait = 3540 s (MS-ASCMD), so
// nothing on the request path may cut a request shorter than that.
const (
	// longestHeartbeat is the longest EAS heartbeat, 59 minutes.
	longestHeartbeat = 3540 * time.Second
	// defaultIdleTimeout keeps idle device connections longer than a heartbeat.
	defaultIdleTimeout = longestHeartbeat + 2*time.Minute
	// defaultResponseHeaderTimeout waits for Exchange's answer to a Ping.
	defaultResponseHeaderTimeout = longestHeartbeat + time.Minute
	// defaultReadHeaderTimeout protects the listener from slow headers.
	defaultReadHeaderTimeout = 20 * time.Second
	// defaultMaxHeaderBytes protects the listener from huge headers.
	defaultMaxHeaderBytes = 64 << 10
	// defaultReplayMaxBytes is the largest request body kept for a retry
	// after a 401 (EAS commands are small; attachments are not retried).
	defaultReplayMaxBytes = 64 << 10
	// defaultKeepAlive is the TCP keep-alive period, both sides.
	defaultKeepAlive = 30 * time.Second
	// defaultTicketMargin is how long before its end a cached ticket is renewed.
	defaultTicketMargin = refresh.EdgeHardMargin
	// defaultRetryAfter is the Retry-After (seconds) sent with a 503.
	defaultRetryAfter = 30
	// defaultRPCTimeout bounds one identity or ticket call (the ticket role
	// may try several domain controllers).
	defaultRPCTimeout = 20 * time.Second
	// defaultRelayConnWait bounds a request's wait for a relay connection
	// when segmesh.edge.relayMaxConnsPerHost are in use, as the dial's
	// timeout bounds a new one.
	defaultRelayConnWait = 10 * time.Second
	// defaultCacheSize bounds the identity and ticket caches (entries).
	defaultCacheSize = 100000
)

// Config is the edge's view of config.json, derived by newConfig without I/O.
type Config struct {
	// Listen is the device TLS address.
	Listen string
	// ServerCertFile and ServerKeyFile are the PEM pair, absolute; empty when
	// a PFX or a self-signed certificate is used.
	ServerCertFile string
	// ServerKeyFile is the PEM key for ServerCertFile.
	ServerKeyFile string
	// ServerPFXFile is the PFX with certificate and key, absolute; empty when unused.
	ServerPFXFile string
	// ServerPFXPasscode is ServerPFXFile's passcode; it is used only to decode.
	ServerPFXPasscode string
	// Upstreams are the Exchange base URLs, tried in order; empty means every
	// mail request is answered 503.
	Upstreams []*url.URL
	// ExchangeCAFile verifies HTTPS upstreams; empty means the system roots.
	ExchangeCAFile string
	// Paths are the forwarded path prefixes; anything else is 404.
	Paths []string
	// OmitClientCANames leaves the trusted CAs' names out of the TLS
	// CertificateRequest; false lists them (segmesh.edge.omitClientCaNames).
	OmitClientCANames bool
	// RequireClientCert reports whether every request needs a valid client
	// certificate (Require Client Certificate or KCD on).
	RequireClientCert bool
	// KCD reports whether requests get a Kerberos ticket. Off, the edge is a
	// plain TLS proxy and passes the device's Authorization through.
	KCD bool
	// TargetSPN is the Exchange SPN tickets are asked for (the first configured).
	TargetSPN string
	// Revocation reports whether client certificates are checked against the
	// CRL snapshot (enable.cert.revocation.validation, when honoured).
	Revocation bool
	// CRL is how the edge judges revocation itself: policy, configured
	// distribution points and refresh interval (Enabled equals Revocation).
	CRL revocationConfig
	// IdentityCacheTTL is how long a certificate's user is cached.
	IdentityCacheTTL time.Duration
	// IdleTimeout, ReadHeaderTimeout, MaxHeaderBytes and KeepAlive configure
	// the device listener.
	IdleTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes int
	// KeepAlive is the TCP keep-alive period.
	KeepAlive time.Duration
	// ResponseHeaderTimeout bounds the wait for Exchange's response headers.
	ResponseHeaderTimeout time.Duration
	// ReplayMaxBytes is the largest body kept for a retry after a 401.
	ReplayMaxBytes int64
	// TicketMargin is how long before its end a cached ticket is renewed.
	TicketMargin time.Duration
	// RetryAfter is the Retry-After, in seconds, of a 503.
	RetryAfter int
	// RPCTimeout bounds one call to the identity or ticket role.
	RPCTimeout time.Duration
	// CacheSize bounds the identity and ticket caches.
	CacheSize int
	// MaxResponseHeaderBytes bounds the header bytes of Exchange's answer,
	// informational answers included, on both paths (upstream_parklimits.go).
	MaxResponseHeaderBytes int64
	// UnauthorizedRefresh is how long after a 401 from Exchange cost a user
	// a fresh ticket further 401s go to the device as they are.
	UnauthorizedRefresh time.Duration
	// DrainGrace is how long a stopping edge keeps accepting connections
	// (upstream_drain.go); 0 closes the listener at once.
	DrainGrace time.Duration
	// DrainSpread is the window over which a stopping edge answers its
	// held Pings when the grace ends (upstream_drain_spread.go); 0 answers
	// them all at once.
	DrainSpread time.Duration
	// Relay reports whether the devices' HTTP/1.1 requests but Pings go to
	// Exchange through the edge's own relay (engine_relay.go; the default,
	// segmesh.edge.http1Engine "relay" or empty) rather than the reverse
	// proxy ("net/http").
	Relay bool
	// TicketKeyFile is the shared TLS session ticket key file, absolute;
	// empty means per-process keys (door_tickets.go).
	TicketKeyFile string
	// TicketKeyMaxAge is the key file's age past which the edge says so.
	TicketKeyMaxAge time.Duration
	// RelayMaxConnsPerHost bounds the relay's connections to each Exchange
	// host (segmesh.edge.relayMaxConnsPerHost; engine_relay_pool.go); 0
	// means no cap.
	RelayMaxConnsPerHost int
	// RelayConnWait bounds how long a request waits for one of them when
	// all are in use.
	RelayConnWait time.Duration
}

// newConfig derives the edge's configuration and checks what only the edge
// cares about. It does no I/O.
func newConfig(c *config.Config) (*Config, error) {
	if c == nil {
		return nil, errors.New("edge: no configuration")
	}
	out, ps := configFrom(c)
	if err := config.ErrorOf(c.Path, ps); err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	return out, nil
}

// configFrom derives the edge's configuration and the problems only the
// edge cares about.
func configFrom(c *config.Config) (*Config, []config.Problem) {
	e := c.Segmesh.Edge
	out := &Config{
		Listen:            e.Listen,
		ServerCertFile:    c.Resolve(e.ServerCertFile),
		ServerKeyFile:     c.Resolve(e.ServerKeyFile),
		ServerPFXFile:     c.Resolve(e.ServerPFXFile),
		ServerPFXPasscode: e.ServerPFXPasscode.Reveal(),
		ExchangeCAFile:    c.Resolve(e.ExchangeCAFile),
		Paths:             e.Paths,
		OmitClientCANames: e.OmitClientCANames,
		RequireClientCert: c.RequireClientCertificate || c.KCD.Enabled,
		KCD:               c.KCD.Enabled,
		Revocation:        c.RevocationHonoured(),
		CRL: revocationConfig{
			Enabled: c.RevocationHonoured(),
			Policy: crl.Policy{FailClosedOnStale: c.Segmesh.CRL.FailClosedOnStale,
				RequireKnownIssuer: c.Segmesh.CRL.UseCertificateCDPs},
			URLs:     c.Gateway.CRLURIs,
			Interval: c.CRLRefreshInterval(),
		},
		IdentityCacheTTL:       time.Duration(c.Segmesh.Identity.CacheTTLSeconds) * time.Second,
		IdleTimeout:            defaultIdleTimeout,
		ReadHeaderTimeout:      defaultReadHeaderTimeout,
		MaxHeaderBytes:         defaultMaxHeaderBytes,
		KeepAlive:              defaultKeepAlive,
		ResponseHeaderTimeout:  defaultResponseHeaderTimeout,
		ReplayMaxBytes:         defaultReplayMaxBytes,
		TicketMargin:           defaultTicketMargin,
		RetryAfter:             defaultRetryAfter,
		RPCTimeout:             defaultRPCTimeout,
		CacheSize:              defaultCacheSize,
		UnauthorizedRefresh:    defaultUnauthorizedRefresh,
		MaxResponseHeaderBytes: defaultMaxResponseHeaderBytes,
		DrainGrace:             time.Duration(e.DrainGraceSeconds) * time.Second,
		DrainSpread:            time.Duration(e.DrainSpreadMillis) * time.Millisecond,
		Relay:                  e.HTTP1Engine != "net/http",
		TicketKeyFile:          c.Resolve(e.TLSSessionTicketKeyFile),
		TicketKeyMaxAge:        time.Duration(e.TLSSessionTicketKeyMaxAgeHours) * time.Hour,
		RelayMaxConnsPerHost:   e.RelayMaxConnsPerHost,
		RelayConnWait:          defaultRelayConnWait,
	}
	if out.TicketKeyMaxAge == 0 {
		out.TicketKeyMaxAge = defaultTicketKeyMaxAge
	}
	if len(out.Paths) == 0 {
		out.Paths = config.Default().Segmesh.Edge.Paths
	}
	if out.IdentityCacheTTL <= 0 {
		out.IdentityCacheTTL = 15 * time.Minute
	}
	if spns := config.SplitList(c.KCD.TargetSPN); len(spns) > 0 {
		out.TargetSPN = spns[0]
	}
	var ps []config.Problem
	bad := func(key, value, msg, fix string) {
		ps = append(ps, config.Problem{Severity: config.SeverityError, Key: key, Value: value, Message: msg, Fix: fix})
	}
	if out.Listen == "" {
		bad("segmesh.edge.listen", "", "empty", "write for example :8443")
	}
	if out.KCD && out.TargetSPN == "" {
		bad("kcd.targetSPN", "", "KCD is on but no target SPN is set", "write HTTP/{exchangeName}")
	}
	for i, raw := range e.ExchangeURLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(fmt.Sprintf("segmesh.edge.exchangeUrls[%d]", i), raw, "not an http(s) URL", "write for example https://mail.corp.example")
			continue
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		out.Upstreams = append(out.Upstreams, u)
	}
	if v := e.HTTP1Engine; v != "" && !slices.Contains(config.HTTP1Engines, v) {
		bad("segmesh.edge.http1Engine", v, "unknown HTTP/1.1 engine", `write "relay" (the default) or "net/http" (the engine before it)`)
	}
	if h := e.TLSSessionTicketKeyMaxAgeHours; h < 0 {
		bad(keyTicketKeyMaxAge, strconv.Itoa(h), "is negative", "write the hours between key rotations, for example 24 (0 means 24)")
	}
	for i, p := range out.Paths {
		if !strings.HasPrefix(p, "/") {
			bad(fmt.Sprintf("segmesh.edge.paths[%d]", i), p, "a path prefix must start with /", "write for example /Microsoft-Server-ActiveSync")
		}
	}
	if g := e.DrainGraceSeconds; g < 0 || g > config.MaxDrainGraceSeconds {
		bad("segmesh.edge.drainGraceSeconds", strconv.Itoa(g), fmt.Sprintf("is outside 0..%d (the stop is bounded by %d s)", config.MaxDrainGraceSeconds, config.DrainTimeoutSeconds),
			"write 5 behind a balancer, 0 for a single gateway")
	}
	if m := e.DrainSpreadMillis; m < 0 || m > config.MaxDrainSpreadMillis {
		bad("segmesh.edge.drainSpreadMillis", strconv.Itoa(m), fmt.Sprintf("is outside 0..%d", config.MaxDrainSpreadMillis),
			"write the milliseconds over which a stopping edge answers its held Pings, for example 1000; 0 answers them all at once")
	}
	return out, ps
}

// Validate returns the problems the edge finds in c beyond config.Load's
// rules. `segmesh run` refuses to start on any error among them and
// `segmesh config check` reports the same problems.
//
// Beyond configFrom it reads the server certificate and key (or PFX) and
// the Exchange CA bundle as Start and a reload will (fileProblems): a
// missing file, a FIFO, a key of another certificate or a wrong PFX
// passcode is refused here with the setting's name instead of failing at
// start, and it opens the client certificate trust store
// (config.TrustProblems) and the session ticket key file.
func Validate(c *config.Config) []config.Problem {
	out, ps := configFrom(c)
	ps = append(ps, config.TrustProblems(c)...)
	ps = append(ps, ticketKeyProblems(out)...)
	bad := func(key, value, msg, fix string) {
		ps = append(ps, config.Problem{Severity: config.SeverityError, Key: key, Value: value, Message: msg, Fix: fix})
	}
	if len(c.Segmesh.Edge.ExchangeURLs) == 0 {
		bad("segmesh.edge.exchangeUrls", "", "no Exchange upstream: the edge would answer 503 to every mail request",
			`list Exchange's base URL(s), for example "exchangeUrls": ["https://mail.corp.example"]`)
	}
	ps = append(ps, fileProblems(out)...)
	return ps
}

// Needs returns the roles the edge calls with c, in start order: crl with
// revocation checking honoured, identity and ticket with KCD on. Start
// connects to each, in this process or at segmesh.peers.
func Needs(c *config.Config) []string {
	var out []string
	if c.RevocationHonoured() {
		out = append(out, role.CRL)
	}
	if c.KCD.Enabled {
		out = append(out, role.Identity, role.Ticket)
	}
	return out
}

// allowedPath reports whether path (decoded) falls under one of the
// configured prefixes. A prefix without a trailing slash matches itself and
// anything below it ("/Microsoft-Server-ActiveSync" and ".../x", not
// "...Sync2"); the match ignores ASCII case, as IIS does. A path with a dot
// segment or a backslash is refused: IIS would resolve it and could leave
// the prefix ("/EWS/../owa/").
func (c *Config) allowedPath(path string) bool {
	if strings.ContainsRune(path, '\\') || hasDotSegment(path) {
		return false
	}
	for _, p := range c.Paths {
		if len(path) < len(p) || !strings.EqualFold(path[:len(p)], p) {
			continue
		}
		if len(path) == len(p) || strings.HasSuffix(p, "/") || path[len(p)] == '/' {
			return true
		}
	}
	return false
}

// hasDotSegment reports whether path has a "." or ".." segment.
func hasDotSegment(path string) bool {
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
