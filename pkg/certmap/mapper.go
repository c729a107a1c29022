package certmap

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/segmesh/segmesh/pkg/dnssrv"
	flightpkg "github.com/segmesh/segmesh/pkg/flight"
	"github.com/segmesh/segmesh/pkg/problem"
	"github.com/segmesh/segmesh/pkg/refusal"
	"github.com/segmesh/segmesh/pkg/secret"
	upnpkg "github.com/segmesh/segmesh/pkg/upn"
)

// Defaults for the zero values of Config's tuning fields.
const (
	DefaultPoolSize    = 4
	DefaultDialTimeout = 5 * time.Second
	DefaultOpTimeout   = 5 * time.Second
	DefaultIdleTimeout = 5 * time.Minute
	DefaultCacheSize   = 10000
	DefaultCacheTTL    = 15 * time.Minute
	DefaultNegativeTTL = time.Minute
)

// Config configures a Mapper. The first four fields are SEG's settings.
type Config struct {
	// URL is cert.mapping.ldap.url (see ParseURL).
	URL string
	// BaseDN is cert.mapping.ldap.basedn; used when URL has no base DN.
	// When both are empty the base is read from the rootDSE:
	// defaultNamingContext, or rootDomainNamingContext (the forest root) on
	// a Global Catalog port.
	BaseDN string
	// BindDN is cert.mapping.ldap.user, the KCD service account's DN.
	BindDN string
	// Password is the KCD service account's password.
	Password secret.Secret

	// StartTLS upgrades an ldap:// connection with StartTLS before the bind.
	// It is refused with ldaps://.
	StartTLS bool
	// RootCAs verifies the directory's certificate (ldaps:// and StartTLS)
	// against the URL's host; nil means the system roots.
	RootCAs *x509.CertPool

	// PoolSize bounds open connections and concurrent directory operations;
	// 0 means DefaultPoolSize.
	PoolSize int
	// DialTimeout bounds connecting, TLS and the bind; 0 means DefaultDialTimeout.
	DialTimeout time.Duration
	// OpTimeout bounds one search; 0 means DefaultOpTimeout.
	OpTimeout time.Duration
	// IdleTimeout closes pooled connections idle that long; 0 means
	// DefaultIdleTimeout, negative means never.
	IdleTimeout time.Duration
	// CacheSize bounds cached answers; 0 means DefaultCacheSize, negative
	// disables the cache.
	CacheSize int
	// CacheTTL is how long a mapping is cached; 0 means DefaultCacheTTL,
	// negative disables the cache.
	CacheTTL time.Duration
	// NegativeTTL is how long a miss (not found, several users, no UPN) is
	// cached; 0 means DefaultNegativeTTL, negative means misses are not cached.
	NegativeTTL time.Duration

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the mapper's events; nil means none.
	Logger *slog.Logger
	// Hooks receives metrics events; its nil fields are skipped.
	Hooks Hooks
	// DNS finds the Global Catalogs when URL has no host (ldaps:///), by
	// _gc._tcp.Domain; required then.
	DNS *dnssrv.Finder
	// Domain is the DNS domain (the forest root's, or the primary domain's)
	// whose Global Catalogs are looked up; required with DNS.
	Domain string
	// DialContext opens TCP connections; nil means a net.Dialer. Tests and
	// network namespaces use it.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Outcome labels a directory lookup for metrics.
type Outcome string

// Outcomes of a directory lookup.
const (
	OutcomeMapped    Outcome = "mapped"
	OutcomeNotFound  Outcome = "not_found"
	OutcomeAmbiguous Outcome = "ambiguous"
	OutcomeNoUPN     Outcome = "no_upn"
	OutcomeError     Outcome = "error"
)

// Hooks are metrics callbacks. They must be cheap and safe for concurrent
// use; a nil field is skipped.
type Hooks struct {
	// Lookup is called after each directory lookup (cache misses only) with
	// its outcome and latency, bind and queueing included.
	Lookup func(outcome Outcome, latency time.Duration)
	// Cache is called on each Map with whether the cache answered.
	Cache func(hit bool)
	// Panic is called in the lookup's goroutine with a lookup's panic,
	// whether or not a caller still waits for it (a caller that waits gets
	// it raised in its own goroutine too): for a log line and a count.
	Panic func(p *flightpkg.Panic)
}

// Mapping is the user the directory holds a certificate on.
type Mapping struct {
	// UPN is the user's userPrincipalName, as stored.
	UPN string
	// DN is the user's distinguished name.
	DN string
	// SAMAccountName is the user's sAMAccountName; empty if not returned.
	SAMAccountName string
	// AltSecurityIdentities holds the user's altSecurityIdentities values,
	// for strong mapping checks.
	AltSecurityIdentities []string
	// ObjectSID is the user's objectSid as S-1-…; empty if not returned.
	ObjectSID string
	// AltSecurityIdentity reports whether MapUPN found the user through
	// altSecurityIdentities (Kerberos:<upn>) rather than userPrincipalName.
	AltSecurityIdentity bool
	// Cached reports whether the answer came from the cache.
	Cached bool
}

// Mapper maps certificates to directory users. It is safe for concurrent
// use. New does no I/O; the first Map (or Check) connects.
type Mapper struct {
	cfg      Config
	ep       Endpoint
	tls      *tls.Config
	log      *slog.Logger
	now      func() time.Time
	pool     *pool
	cache    *cache
	flightMu sync.Mutex
	flights  map[fingerprint]*flight
	inflight sync.WaitGroup
	gc       *gcFinder       // Global Catalogs from DNS; nil with a host in the URL
	life     context.Context // cancelled by Close
	kill     context.CancelFunc

	baseMu sync.Mutex
	baseDN string // resolved search base; empty until known

	// refused remembers the directory's refusal of the bind credentials
	// (LDAP 49) for refusal.DefaultWindow: lookups in the meantime get it
	// without binding again, since each refused bind counts towards the
	// service account's lockout (dial.go).
	refused *refusal.Memory
}

type flight struct {
	done chan struct{}
	a    answer
	err  error // a failure that is not an answer
}

// New validates cfg and returns a Mapper. It does no I/O. A refusal is a
// *problem.SettingError naming the setting at fault (KeyURL, KeyBindDN, …).
func New(cfg Config) (*Mapper, error) {
	ep, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, problem.OnSetting(KeyURL, err)
	}
	if strings.TrimSpace(cfg.BindDN) == "" {
		return nil, problem.OnSetting(KeyBindDN, errors.New("certmap: "+KeyBindDN+" is empty: set the KCD service account's DN, for example CN=svc_seg,CN=Users,DC=corp,DC=example"))
	}
	if _, err := ldap.ParseDN(cfg.BindDN); err != nil || !strings.Contains(cfg.BindDN, "=") {
		return nil, problem.OnSetting(KeyBindDN, fmt.Errorf("certmap: %s %q is not a distinguished name: %s", KeyBindDN, cfg.BindDN, hintBind))
	}
	if cfg.Password.IsZero() {
		return nil, problem.OnSetting(KeyPassword, errors.New("certmap: the KCD service account password is empty; the directory bind needs it"))
	}
	if cfg.BaseDN != "" {
		if _, err := ldap.ParseDN(cfg.BaseDN); err != nil {
			return nil, problem.OnSetting(KeyBaseDN, fmt.Errorf("certmap: %s %q is not a distinguished name", KeyBaseDN, cfg.BaseDN))
		}
	}
	if cfg.StartTLS && ep.TLS {
		return nil, problem.OnSetting(KeyStartTLS, fmt.Errorf("certmap: StartTLS is set but %s %s already uses TLS: use ldap:// with StartTLS, or ldaps:// alone", KeyURL, ep))
	}
	if ep.Discover && (cfg.DNS == nil || cfg.Domain == "") {
		return nil, problem.OnSetting(KeyURL, fmt.Errorf("certmap: %s %s has no host, so the Global Catalogs are found in DNS, which needs a domain (kcd.domains): write a host in the URL or configure the domains", KeyURL, cfg.URL))
	}
	if ep.Discover && !ep.TLS && !cfg.StartTLS {
		return nil, problem.OnSetting(KeyURL, fmt.Errorf("certmap: %s %s finds the Global Catalogs in DNS, which nobody authenticates, and binds without TLS: a spoofed DNS answer would receive the service account's password in clear. %s", KeyURL, cfg.URL, DiscoveryTLSFix))
	}
	applyDefaults(&cfg)
	m := &Mapper{
		cfg: cfg, ep: ep, log: cfg.Logger, now: cfg.Now,
		tls: &tls.Config{
			ServerName: ep.Host,
			RootCAs:    cfg.RootCAs,
			MinVersion: tls.VersionTLS12,
		},
		flights: make(map[fingerprint]*flight),
		refused: refusal.New(refusal.DefaultWindow, cfg.Now),
	}
	if ep.Discover {
		u, _ := url.Parse(strings.TrimSpace(cfg.URL)) // ParseURL accepted it
		m.gc = &gcFinder{dns: cfg.DNS, domain: cfg.Domain, port: ep.Port, usePort: u.Port() != ""}
	}
	m.life, m.kill = context.WithCancel(context.Background())
	m.pool = newPool(cfg.PoolSize, cfg.IdleTimeout, cfg.Now, m.dial)
	m.cache = newCache(cfg.CacheSize, cfg.CacheTTL, cfg.NegativeTTL, cfg.Now)
	switch {
	case ep.BaseDN != "":
		m.baseDN = ep.BaseDN
	case cfg.BaseDN != "":
		m.baseDN = cfg.BaseDN
	}
	return m, nil
}

func applyDefaults(c *Config) {
	if c.PoolSize <= 0 {
		c.PoolSize = DefaultPoolSize
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = DefaultNegativeTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.DialContext == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		c.DialContext = d.DialContext
	}
}

// Endpoint returns the parsed cert.mapping.ldap.url.
func (m *Mapper) Endpoint() Endpoint { return m.ep }

// BaseDN returns the search base: from the URL, cert.mapping.ldap.basedn or
// the rootDSE; empty until the rootDSE has been read.
func (m *Mapper) BaseDN() string {
	m.baseMu.Lock()
	defer m.baseMu.Unlock()
	return m.baseDN
}

// Map returns the user whose userCertificate equals der, the certificate's
// DER. A directory answer that is no mapping is a *NotFoundError (matches
// ErrNotFound), *AmbiguousError or *NoUPNError; answers are cached by the
// certificate's SHA-256. A failure to ask is a *BindError or
// *DirectoryError and is not cached. Concurrent calls for one certificate
// make one directory search.
func (m *Mapper) Map(ctx context.Context, der []byte) (Mapping, error) {
	if len(der) == 0 {
		return Mapping{}, errors.New("certmap: empty certificate")
	}
	key := sha256.Sum256(der)
	if mp, ok, err := m.cached(key); ok {
		return mp, err
	}
	return m.sharedLookup(ctx, key, func(conn *ldap.Conn, base string) (answer, error) {
		return m.searchCertificate(conn, base, der)
	})
}

// MapUPN returns the user a UPN names in the directory: the user whose
// userPrincipalName equals it or, failing that, the one whose
// altSecurityIdentities holds Kerberos:<upn> (the seed's fix for a
// certificate UPN that differs from AD). Resolving it here makes the fix work
// on every KDC, including those that ignore altSecurityIdentities for S4U
// (Samba). Answers are cached like Map's; errors are as Map's, a miss being
// a *NotFoundError with UPN set.
func (m *Mapper) MapUPN(ctx context.Context, upn string) (Mapping, error) {
	if upn == "" {
		return Mapping{}, errors.New("certmap: empty UPN")
	}
	key := sha256.Sum256([]byte("upn\x00" + upnpkg.FoldASCII(upn)))
	if mp, ok, err := m.cached(key); ok {
		return mp, err
	}
	return m.sharedLookup(ctx, key, func(conn *ldap.Conn, base string) (answer, error) {
		return m.searchUPN(conn, base, upn)
	})
}

// cached returns the cached answer for key, if any (ok), and reports a hit
// to the hooks; sharedLookup reports a miss once it has looked again.
func (m *Mapper) cached(key fingerprint) (Mapping, bool, error) {
	a, ok := m.cache.get(key)
	if !ok {
		return Mapping{}, false, nil
	}
	m.hookCache(true)
	a.mapping.Cached = true
	return a.mapping, true, a.err
}

// sharedLookup runs search once for concurrent callers with the same key
// and caches the directory's answer. The caller has missed the cache.
func (m *Mapper) sharedLookup(ctx context.Context, key fingerprint, search func(conn *ldap.Conn, base string) (answer, error)) (Mapping, error) {
	m.flightMu.Lock()
	f, ok := m.flights[key]
	if !ok {
		// A flight for key may have ended between the caller's cache miss
		// and this lock; it stored its answer before leaving m.flights, so
		// look again rather than ask the directory a second time.
		if a, hit := m.cache.get(key); hit {
			m.flightMu.Unlock()
			m.hookCache(true)
			a.mapping.Cached = true
			return a.mapping, a.err
		}
		if m.life.Err() != nil {
			m.flightMu.Unlock()
			m.hookCache(false)
			return Mapping{}, errors.New("certmap: mapper is closed")
		}
		f = &flight{done: make(chan struct{})}
		m.flights[key] = f
		m.inflight.Add(1)
		// The lookup belongs to every caller waiting for it, so it runs
		// detached from the first caller's cancellation (keeping its
		// values, such as the trace), bounded by its own timeouts and by
		// Close.
		lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		stop := context.AfterFunc(m.life, cancel)
		go func() {
			defer m.inflight.Done()
			defer cancel()
			defer stop()
			start := m.now()
			// A panic of the lookup (a parser meeting a directory answer it
			// did not expect) ends the flight as an error: nothing is
			// cached, and each waiting caller gets it raised in its own
			// goroutine (the gRPC handler's), where pkg/rpc's recovery
			// answers Internal, logs and counts it. Raised here, nothing
			// recovered it and the process ended with every role in it
			// (TestAttackPanicInTheLookupReachesTheCaller).
			f.a, f.err = flightpkg.Guard("certmap: the directory lookup", func() (answer, error) { return m.lookup(lctx, search) })
			if p, ok := f.err.(*flightpkg.Panic); ok { //nolint:errorlint // Guard returns the *Panic itself
				m.hookPanic(p)
			}
			m.hookLookup(outcomeOf(f.a, f.err), m.now().Sub(start))
			if f.err == nil {
				m.cache.put(key, f.a)
			}
			m.flightMu.Lock()
			delete(m.flights, key)
			m.flightMu.Unlock()
			close(f.done)
		}()
	}
	m.flightMu.Unlock()
	m.hookCache(false)
	select {
	case <-f.done:
		if f.err != nil {
			flightpkg.Raise(f.err)
			return Mapping{}, f.err
		}
		return f.a.mapping, f.a.err
	case <-ctx.Done():
		return Mapping{}, fmt.Errorf("certmap: wait for the directory: %w", ctx.Err())
	}
}

// Check binds (on a new or pooled connection), resolves the search base and
// reads the rootDSE, so it always makes one round trip: for readiness probes
// and diagnose, nil means a lookup can run now.
func (m *Mapper) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.DialTimeout+m.cfg.OpTimeout)
	defer cancel()
	err := m.pool.do(ctx, func(conn *ldap.Conn) error {
		if _, err := m.searchBase(ctx, conn); err != nil {
			return err
		}
		req := ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1,
			int(m.cfg.OpTimeout/time.Second), false, "(objectClass=*)", []string{"supportedLDAPVersion"}, nil)
		_, err := conn.Search(req)
		return err
	})
	if err != nil {
		return m.wrap("check", err)
	}
	return nil
}

// CacheLen returns the number of cached answers.
func (m *Mapper) CacheLen() int { return m.cache.len() }

// ShareCache makes m answer from old's cache and add to it: for a mapper
// that replaces old with settings giving the same answers and the same
// cache lifetimes (a new password, pool size or CA file), so that a reload
// does not send every device back to the directory. Call it before m is
// used.
func (m *Mapper) ShareCache(old *Mapper) { m.cache = old.cache }

// Purge empties the cache, for example after the directory changed.
func (m *Mapper) Purge() { m.cache.purge() }

// Close cancels lookups in flight, waits for them and closes the pooled
// connections. Map fails afterwards.
func (m *Mapper) Close() error {
	m.flightMu.Lock()
	m.kill()
	m.flightMu.Unlock()
	m.pool.close()
	m.inflight.Wait()
	return nil
}

func outcomeOf(a answer, err error) Outcome {
	var amb *AmbiguousError
	var noUPN *NoUPNError
	switch {
	case err != nil:
		return OutcomeError
	case a.err == nil:
		return OutcomeMapped
	case errors.Is(a.err, ErrNotFound):
		return OutcomeNotFound
	case errors.As(a.err, &amb):
		return OutcomeAmbiguous
	case errors.As(a.err, &noUPN):
		return OutcomeNoUPN
	}
	return OutcomeError
}

func (m *Mapper) hookCache(hit bool) {
	if m.cfg.Hooks.Cache != nil {
		m.cfg.Hooks.Cache(hit)
	}
}

func (m *Mapper) hookPanic(p *flightpkg.Panic) {
	if m.cfg.Hooks.Panic != nil {
		m.cfg.Hooks.Panic(p)
	}
}

func (m *Mapper) hookLookup(o Outcome, d time.Duration) {
	if m.cfg.Hooks.Lookup != nil {
		m.cfg.Hooks.Lookup(o, d)
	}
}
