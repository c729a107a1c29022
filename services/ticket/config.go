package ticket

import (
	"net"
	"slices"
	"strings"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/dnssrv"
	"github.com/segmesh/segmesh/pkg/refresh"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/s4u"
)

// Config is the ticket role's section of the configuration.
type Config struct {
	// Enabled is kcd.enabled; with it off the role serves no tickets.
	Enabled bool
	// Realm is the primary domain (the service account's realm), upper case.
	Realm string
	// Service is the service account's name.
	Service string
	// Password is the service account's password.
	Password string
	// ArmorAccount and ArmorPassword, when set, armour the service
	// account's AS exchange with FAST using that computer account's TGT
	// (segmesh.ticket.armorAccountUserName / armorAccountPassword).
	ArmorAccount, ArmorPassword string
	// KDCs maps each realm to its domain controllers (host:88), in order;
	// a realm with none has its KDCs found by DNS SRV.
	KDCs map[string][]string
	// DNSServer is segmesh.dnsServer: the DNS server asked for the KDCs of
	// realms without a domain controller; empty means the system's.
	DNSServer string
	// OtherRealms are the configured domains besides the primary.
	OtherRealms []string
	// SPNs are the target SPNs tickets may be issued for; the first is the default.
	SPNs []string
	// CacheSize bounds the (user, SPN) cache.
	CacheSize int
	// KDCTimeout bounds one attempt at one KDC.
	KDCTimeout time.Duration
	// MaxConcurrent bounds concurrent KDC exchanges per realm.
	MaxConcurrent int
	// NegativeTTL is how long a definitive KDC refusal is remembered.
	NegativeTTL time.Duration
	// RefreshMargin: a hit on a ticket with less than RefreshMargin plus a
	// random part of RefreshJitter left refreshes it first (by renewal
	// where the KDC allows it). It must exceed the edge's refresh margin
	// (services/edge: 65 to 70 minutes) so that the edge's early request
	// finds the ticket due. Zero leaves a ticket until it is no longer
	// served (MinRemaining); a margin is never more than half a lifetime.
	RefreshMargin time.Duration
	// RefreshJitter spreads refreshes of tickets issued together.
	RefreshJitter time.Duration
	// RenewRetry is how long renewals are no longer tried after the KDC
	// refused three in a row while new tickets were issued (Samba's KDC
	// renews no service ticket); then one is tried again.
	RenewRetry time.Duration
	// MinRemaining: a cached ticket with less left than this is not served.
	MinRemaining time.Duration
	// AllowRC4 is segmesh.ticket.allowRc4: RC4 is offered after AES.
	AllowRC4 bool
}

// Defaults of the refresh policy (see Config).
const (
	DefaultRefreshMargin = refresh.TicketMargin
	DefaultRefreshJitter = refresh.TicketJitter
	DefaultRenewRetry    = 6 * time.Hour
)

// ConfigFrom derives the role's configuration from config.json.
func ConfigFrom(c *config.Config) Config {
	out := Config{
		Enabled:       c.KCD.Enabled,
		Service:       c.KCD.ServiceAccountUserName,
		Password:      c.KCD.ServiceAccountPassword.Reveal(),
		ArmorAccount:  strings.TrimSpace(c.Segmesh.Ticket.ArmorAccountUserName),
		ArmorPassword: c.Segmesh.Ticket.ArmorAccountPassword.Reveal(),
		KDCs:          map[string][]string{},
		SPNs:          config.SplitList(c.KCD.TargetSPN),
		CacheSize:     c.Segmesh.Ticket.CacheSize,
		KDCTimeout:    time.Duration(c.Segmesh.Ticket.KDCTimeoutSeconds) * time.Second,
		MaxConcurrent: c.Segmesh.Ticket.MaxConcurrentKDCExchanges,
		NegativeTTL:   30 * time.Second,
		RefreshMargin: DefaultRefreshMargin,
		RefreshJitter: DefaultRefreshJitter,
		RenewRetry:    DefaultRenewRetry,
		MinRemaining:  2 * time.Minute,
		DNSServer:     c.Segmesh.DNSServer,
		AllowRC4:      c.Segmesh.Ticket.AllowRC4,
	}
	for i, d := range c.KCD.Domains {
		realm := strings.ToUpper(d.Domain)
		if i == 0 {
			out.Realm = realm
		}
		if _, seen := out.KDCs[realm]; !seen && realm != out.Realm {
			out.OtherRealms = append(out.OtherRealms, realm)
		}
		if d.DomainController == "" {
			// Found by DNS: the realm is known, with no address.
			if _, seen := out.KDCs[realm]; !seen {
				out.KDCs[realm] = nil
			}
			continue
		}
		out.KDCs[realm] = append(out.KDCs[realm], kdcAddr(d.DomainController))
	}
	return out
}

// Discovered reports whether some realm's KDCs are found by DNS SRV.
func (c Config) Discovered() bool {
	for _, addrs := range c.KDCs {
		if len(addrs) == 0 {
			return true
		}
	}
	return false
}

// kdcAddr adds the Kerberos port to a domain controller name without one.
func kdcAddr(dc string) string {
	if _, _, err := net.SplitHostPort(dc); err == nil {
		return dc
	}
	return net.JoinHostPort(dc, "88")
}

// Validate returns the problems the ticket role finds in c beyond
// config.Load's rules. `segmesh run` refuses to start on any error among
// them and `segmesh config check` reports the same problems. When the
// rules find no error it builds the S4U client as New does
// (buildProblems), so what the client's constructor refuses is refused
// here too.
func Validate(c *config.Config) []config.Problem {
	cfg := ConfigFrom(c)
	return role.WithBuild(cfg.problems(), cfg.buildProblems)
}

// buildProblems runs Build, as New does (it reaches no KDC), and returns
// its refusal as a problem: the rules of s4u.New and kdc.New beyond
// problems', a service or armor account written as a UPN or DOMAIN\user,
// a domain written twice in another case.
func (c Config) buildProblems() []config.Problem {
	if !c.Enabled {
		return nil
	}
	_, err := c.Build(BuildOptions{})
	if err == nil {
		return nil
	}
	bare := "write the account's sAMAccountName alone (svc_seg, not svc_seg@corp.example or CORP\\svc_seg): its realm is "
	return role.BuildProblems(role.Ticket, err, []role.Setting{
		{Key: s4u.KeyArmorAccount, Value: c.ArmorAccount,
			Fix: bare + "the first domain in kcd.domains"},
		{Key: s4u.KeyServiceAccount, Value: c.Service,
			Fix: bare + "the first domain in kcd.domains"},
		{Key: s4u.KeyServicePassword, Fix: `write the account's password with the suffix ".plaintext" in ` + s4u.KeyServicePassword},
		{Key: s4u.KeyArmorPassword, Fix: `write the computer account's password with the suffix ".plaintext" in ` + s4u.KeyArmorPassword},
		{Key: dnssrv.KeyDNSServer, Value: c.DNSServer,
			Fix: "write the DNS server as an IP address or host:port, for example 10.0.0.10 or 10.0.0.10:53"},
		{Key: s4u.KeyDomains, Fix: "write each domain once with its domain controllers as host or host:port (segmesh diagnose builds the same client)"},
	})
}

// problems checks what the role needs beyond config.Load's rules.
func (c Config) problems() []config.Problem {
	if !c.Enabled {
		return nil
	}
	var out []config.Problem
	bad := func(key, msg, fix string) {
		out = append(out, config.Problem{Severity: config.SeverityError, Key: key, Message: msg, Fix: fix})
	}
	if c.Realm == "" {
		bad("kcd.domains", "no primary domain", `add {"domain": "CORP.EXAMPLE", "domainController": "dc1.corp.example"} first (leave domainController out to find the KDCs by DNS SRV)`)
	}
	if c.DNSServer != "" {
		if _, err := dnssrv.NormalizeServer(c.DNSServer); err != nil {
			bad(dnssrv.KeyDNSServer, err.Error(), "write the DNS server as an IP address or host:port, for example 10.0.0.10 or 10.0.0.10:53")
		}
	}
	if c.Service == "" || c.Password == "" {
		bad("kcd.serviceAccountUserName", "the service account is incomplete (name and password are both needed)",
			`write the account's name, and its password with the suffix ".plaintext" in kcd.serviceAccountPassword`)
	}
	if c.ArmorAccount != "" && c.ArmorPassword == "" {
		bad("segmesh.ticket.armorAccountPassword", "the armor account "+c.ArmorAccount+" has no password",
			`write the computer account's password with the suffix ".plaintext" in segmesh.ticket.armorAccountPassword, or empty segmesh.ticket.armorAccountUserName`)
	}
	if c.ArmorAccount == "" && c.ArmorPassword != "" {
		bad("segmesh.ticket.armorAccountUserName", "an armor account password is set without the account",
			"write the computer account's name (for example SEGGW$) in segmesh.ticket.armorAccountUserName, or remove the password")
	}
	if len(c.SPNs) == 0 {
		bad("kcd.targetSPN", "no target SPN", "write HTTP/{exchangeName}, for example HTTP/mail.corp.example")
	}
	if c.AllowRC4 && c.Discovered() {
		out = append(out, config.Problem{Severity: config.SeverityWarning, Key: KeyAllowRC4, Value: "true",
			Message: "RC4 is allowed while the KDCs of " + strings.Join(c.discoveredRealms(), ", ") + " are found by DNS SRV: " +
				"a spoofed _kerberos._tcp answer can point the gateway at a rogue KDC offering only RC4, which then gets the " +
				"service account's pre-authentication under its NT hash, to crack offline",
			Fix: "write a domainController for those kcd.domains, or give the service account AES keys " +
				"(msDS-SupportedEncryptionTypes 24 and a password reset) and set " + KeyAllowRC4 + " to false"})
	}
	return out
}

// KeyAllowRC4 is the setting that adds RC4 to the etypes offered.
const KeyAllowRC4 = "segmesh.ticket.allowRc4"

// discoveredRealms returns the realms whose KDCs are found by DNS SRV, sorted.
func (c Config) discoveredRealms() []string {
	var out []string
	for realm, addrs := range c.KDCs {
		if len(addrs) == 0 {
			out = append(out, realm)
		}
	}
	slices.Sort(out)
	return out
}

// canonicalSPN returns the configured spelling of spn and whether it is a
// configured target SPN at all (SPNs compare case-insensitively).
func (c Config) canonicalSPN(spn string) (string, bool) {
	for _, s := range c.SPNs {
		if s == spn || strings.EqualFold(s, spn) {
			return s, true
		}
	}
	return "", false
}
