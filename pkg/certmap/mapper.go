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
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/segmesh/segmesh/pkg/secret"
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
	life     context.Context // cancelled by Close
	kill     context.CancelFunc

	baseMu sync.Mutex
	baseDN string // resolved search base; empty until known
}

type flight struct {
	done chan struct{}
	a    answer
	err  error // a failure that is not an answer
}

// New validates cfg and returns a Mapper. It does no I/O.
func New(cfg Config) (*Mapper, error) {
	ep, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.BindDN) == "" {
		return nil, errors.New("certmap: cert.mapping.ldap.user is empty: set the KCD service account's DN, for example CN=svc_seg,CN=Users,DC=corp,DC=example")
	}
	if _, err := ldap.ParseDN(cfg.BindDN); err != nil || !strings.Contains(cfg.BindDN, "=") {
		return nil, fmt.Errorf("certmap: cert.mapping.ldap.user %q is not a distinguished name: %s", cfg.BindDN, hintBind)
	}
	if cfg.Password.IsZero() {
		return nil, errors.New("certmap: the KCD service account password is empty; the directory bind needs it")
	}
	if cfg.BaseDN != "" {
		if _, err := ldap.ParseDN(cfg.BaseDN); err != nil {
			return nil, fmt.Errorf("certmap: cert.mapping.ldap.basedn %q is not a distinguished name", cfg.BaseDN)
		}
	}
	if cfg.StartTLS && ep.TLS {
		return nil, fmt.Errorf("certmap: StartTLS is set but cert.mapping.ldap.url %s already uses TLS: use ldap:// with StartTLS, or ldaps:// alone", ep)
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
	return m.cachedLookup(ctx, sha256.Sum256(der), func(conn *ldap.Conn, base string) (answer, error) {
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
	return m.cachedLookup(ctx, sha256.Sum256([]byte("upn\x00"+strings.ToLower(upn))), func(conn *ldap.Conn, base string) (answer, error) {
		return m.searchUPN(conn, base, upn)
	})
}

// cachedLookup answers from the cache or runs search once for concurrent
// callers with the same key, caching directory answers.
func (m *Mapper) cachedLookup(ctx context.Context, key fingerprint, search func(conn *ldap.Conn, base string) (answer, error)) (Mapping, error) {
	if a, ok := m.cache.get(key); ok {
		m.hookCache(true)
		a.mapping.Cached = true
		return a.mapping, a.err
	}
	m.hookCache(false)

	m.flightMu.Lock()
	f, ok := m.flights[key]
	if !ok {
		if m.life.Err() != nil {
			m.flightMu.Unlock()
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
			f.a, f.err = m.lookup(lctx, search)
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
	select {
	case <-f.done:
		if f.err != nil {
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

func (m *Mapper) hookLookup(o Outcome, d time.Duration) {
	if m.cfg.Hooks.Lookup != nil {
		m.cfg.Hooks.Lookup(o, d)
	}
}

// lookup searches the directory. It returns the answer, or an error when
// there is none (bind, network, timeout, a search failure).
func (m *Mapper) lookup(ctx context.Context, search func(conn *ldap.Conn, base string) (answer, error)) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.DialTimeout+m.cfg.OpTimeout)
	defer cancel()
	var a answer
	err := m.pool.do(ctx, func(conn *ldap.Conn) error {
		base, err := m.searchBase(ctx, conn)
		if err != nil {
			return err
		}
		a, err = search(conn, base)
		return err
	})
	if err != nil {
		return answer{}, m.wrap("search", err)
	}
	return a, nil
}

// searchAttributes lists the attributes a user search asks for.
func searchAttributes() []string {
	return []string{"userPrincipalName", "distinguishedName", "sAMAccountName", "altSecurityIdentities", "objectSid"}
}

// maxEntries is how many users the search asks for at most: two tell
// "several", the rest name them in the error.
const maxEntries = 10

func (m *Mapper) searchCertificate(conn *ldap.Conn, base string, der []byte) (answer, error) {
	entries, err := m.searchUsers(conn, base, userCertificateFilter(der))
	if err != nil {
		return answer{}, err
	}
	switch len(entries) {
	case 0:
		return answer{err: &NotFoundError{BaseDN: base, GlobalCatalog: m.ep.GlobalCatalog()}}, nil
	case 1:
		return mappingOf(entries[0])
	default:
		return answer{err: &AmbiguousError{DNs: dnsOf(entries)}}, nil
	}
}

func (m *Mapper) searchUPN(conn *ldap.Conn, base, upn string) (answer, error) {
	esc := EscapeBytes([]byte(upn))
	filter := "(&(objectClass=user)(|(userPrincipalName=" + esc + ")(altSecurityIdentities=" + EscapeBytes([]byte("Kerberos:")) + esc + ")))"
	entries, err := m.searchUsers(conn, base, filter)
	if err != nil {
		return answer{}, err
	}
	// The KDC resolves a name by userPrincipalName first; so do we.
	var alt []*ldap.Entry
	for _, e := range entries {
		if strings.EqualFold(e.GetEqualFoldAttributeValue("userPrincipalName"), upn) {
			return mappingOf(e)
		}
		alt = append(alt, e)
	}
	switch len(alt) {
	case 0:
		return answer{err: &NotFoundError{BaseDN: base, GlobalCatalog: m.ep.GlobalCatalog(), UPN: upn}}, nil
	case 1:
		a, err := mappingOf(alt[0])
		a.mapping.AltSecurityIdentity = true
		return a, err
	default:
		return answer{err: &AmbiguousError{DNs: dnsOf(alt), UPN: upn}}, nil
	}
}

// searchUsers runs a subtree search for users under base.
func (m *Mapper) searchUsers(conn *ldap.Conn, base, filter string) ([]*ldap.Entry, error) {
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		maxEntries, int(m.cfg.OpTimeout/time.Second), false, filter, searchAttributes(), nil)
	res, err := conn.Search(req)
	if err != nil && (!ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) || res == nil) {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return nil, &DirectoryError{Op: "search", Endpoint: m.ep.String(), Err: err,
				Hint: fmt.Sprintf("the base DN %s does not exist: check the URL's path, cert.mapping.ldap.basedn or leave both empty to use the rootDSE", base)}
		}
		return nil, err
	}
	return res.Entries, nil
}

func mappingOf(e *ldap.Entry) (answer, error) {
	dn := e.DN
	if dn == "" {
		dn = e.GetEqualFoldAttributeValue("distinguishedName")
	}
	upn := e.GetEqualFoldAttributeValue("userPrincipalName")
	if upn == "" {
		return answer{err: &NoUPNError{DN: dn}}, nil
	}
	m := Mapping{
		UPN: upn, DN: dn,
		SAMAccountName:        e.GetEqualFoldAttributeValue("sAMAccountName"),
		AltSecurityIdentities: e.GetEqualFoldAttributeValues("altSecurityIdentities"),
	}
	if raw := e.GetEqualFoldRawAttributeValue("objectSid"); len(raw) > 0 {
		m.ObjectSID, _ = sidString(raw) // a malformed SID only disables the SID check
	}
	return answer{mapping: m}, nil
}

func dnsOf(entries []*ldap.Entry) []string {
	dns := make([]string, len(entries))
	for i, e := range entries {
		dns[i] = e.DN
	}
	return dns
}

// searchBase returns the configured base DN, or reads it once from the
// rootDSE: defaultNamingContext, or on a Global Catalog port
// rootDomainNamingContext, the forest root.
func (m *Mapper) searchBase(ctx context.Context, conn *ldap.Conn) (string, error) {
	m.baseMu.Lock()
	base := m.baseDN
	m.baseMu.Unlock()
	if base != "" {
		return base, nil
	}
	attr := "defaultNamingContext"
	if m.ep.GlobalCatalog() {
		attr = "rootDomainNamingContext"
	}
	req := ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1,
		int(m.cfg.OpTimeout/time.Second), false, "(objectClass=*)", []string{attr}, nil)
	res, err := conn.Search(req)
	if err != nil && isConnBroken(err, conn) {
		return "", err
	}
	if err != nil {
		return "", &DirectoryError{Op: "read rootDSE", Endpoint: m.ep.String(), Err: err,
			Hint: "set cert.mapping.ldap.basedn or put the base DN in the URL's path"}
	}
	if len(res.Entries) == 1 {
		base = res.Entries[0].GetEqualFoldAttributeValue(attr)
	}
	if base == "" {
		return "", &DirectoryError{Op: "read rootDSE", Endpoint: m.ep.String(), Err: fmt.Errorf("no %s", attr),
			Hint: "set cert.mapping.ldap.basedn or put the base DN in the URL's path"}
	}
	m.baseMu.Lock()
	m.baseDN = base
	m.baseMu.Unlock()
	m.log.InfoContext(ctx, "ldap search base from rootDSE", "base_dn", base, "attribute", attr, "ldap", m.ep.String())
	return base, nil
}

// dial connects, starts TLS as configured and binds as the service account.
func (m *Mapper) dial(ctx context.Context) (*ldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.DialTimeout)
	defer cancel()
	raw, err := m.cfg.DialContext(ctx, "tcp", m.ep.Addr())
	if err != nil {
		return nil, &DirectoryError{Op: "dial", Endpoint: m.ep.String(), Err: err,
			Hint: "check cert.mapping.ldap.url and that the directory is up"}
	}
	if m.ep.TLS {
		tc := tls.Client(raw, m.tls.Clone())
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, &DirectoryError{Op: "TLS handshake with", Endpoint: m.ep.String(), Err: err, Hint: tlsHint(err)}
		}
		raw = tc
	}
	conn := ldap.NewConn(raw, m.ep.TLS)
	conn.Start()
	conn.SetTimeout(m.cfg.DialTimeout)
	err = runWithContext(ctx, conn, func(conn *ldap.Conn) error {
		if m.cfg.StartTLS {
			if err := conn.StartTLS(m.tls.Clone()); err != nil {
				return &DirectoryError{Op: "StartTLS with", Endpoint: m.ep.String(), Err: err, Hint: tlsHint(err)}
			}
		}
		if err := conn.Bind(m.cfg.BindDN, m.cfg.Password.Reveal()); err != nil {
			var le *ldap.Error
			be := &BindError{BindDN: m.cfg.BindDN, Err: err}
			if errors.As(err, &le) && le.ResultCode < ldap.ErrorNetwork {
				be.Code = le.ResultCode
			} else if isConnBroken(err, conn) {
				return &DirectoryError{Op: "bind to", Endpoint: m.ep.String(), Err: err,
					Hint: "check that the directory is up"}
			}
			return be
		}
		return nil
	})
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	conn.SetTimeout(m.cfg.OpTimeout)
	return conn, nil
}

func tlsHint(err error) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	// go-ldap's StartTLS flattens the handshake error to text.
	msg := err.Error()
	switch {
	case errors.As(err, &unknown), strings.Contains(msg, "unknown authority"):
		return "the directory's certificate is not signed by a configured CA: set the LDAP CA file to the CA that issued it"
	case errors.As(err, &host), strings.Contains(msg, "certificate is valid for"), strings.Contains(msg, "certificate is not valid for"):
		return "the directory's certificate does not name the URL's host: use the host name the certificate carries"
	}
	return "check the directory's TLS certificate and the LDAP CA file"
}

// wrap makes sure an error leaving Map carries the package prefix and a type
// callers can branch on.
func (m *Mapper) wrap(op string, err error) error {
	var de *DirectoryError
	var be *BindError
	if errors.As(err, &de) || errors.As(err, &be) {
		return err
	}
	hint := ""
	// go-ldap reports its own request timeout as a network error with text only.
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timed out") {
		hint = fmt.Sprintf("the directory did not answer in time; if it is slow, %s", hintIndex)
	}
	return &DirectoryError{Op: op, Endpoint: m.ep.String(), Err: err, Hint: hint}
}
