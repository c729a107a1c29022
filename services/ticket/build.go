package ticket

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/segmesh/segmesh/pkg/dnssrv"
	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/s4u"
)

// BuildOptions are what a caller of Build supplies beyond the
// configuration: the clock, the log and test seams.
type BuildOptions struct {
	// Exchanger sends KDC requests; nil means a kdc.Transport to the
	// configured domain controllers (timeout and concurrency as configured).
	Exchanger kdc.Exchanger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the client's events; nil discards them.
	Logger *slog.Logger
	// Hooks observe KDC exchanges (metrics).
	Hooks s4u.Hooks
	// KDCHooks observe the transport built when Exchanger is nil: each
	// exchange, attempt and DNS lookup (diagnose).
	KDCHooks kdc.Hooks
}

// Build makes the S4U client the ticket role uses from c: the realms and
// their domain controllers, the service account, the other domains. It
// reaches no KDC. The ticket role and `segmesh diagnose` both call it.
func (c Config) Build(o BuildOptions) (*s4u.Client, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	x := o.Exchanger
	if x == nil {
		kc := kdc.Config{Realms: c.KDCs, Timeout: c.KDCTimeout, MaxConcurrent: c.MaxConcurrent, Logger: o.Logger, Hooks: o.KDCHooks}
		if c.Discovered() {
			f, err := dnssrv.New(c.DNSServer)
			if err != nil {
				return nil, fmt.Errorf("ticket: %w", err)
			}
			kc.DNS = f
		}
		t, err := kdc.New(kc)
		if err != nil {
			return nil, fmt.Errorf("ticket: %w", err)
		}
		x = t
	}
	cl, err := s4u.New(s4u.Config{
		Realm: c.Realm, Service: c.Service, Password: c.Password, Domains: c.OtherRealms,
		ArmorAccount: c.ArmorAccount, ArmorPassword: c.ArmorPassword, AllowRC4: c.AllowRC4,
		Exchanger: x, Now: o.Now, Logger: o.Logger, Hooks: o.Hooks,
	})
	if err != nil {
		return nil, fmt.Errorf("ticket: %w", err)
	}
	return cl, nil
}
