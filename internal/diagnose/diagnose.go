package diagnose

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/http"
	"time"

	"github.com/segmesh/segmesh/pkg/certmap"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/s4u"
	"github.com/segmesh/segmesh/pkg/trust"
)

// Status is a step's outcome.
type Status string

// Step outcomes.
const (
	// StatusPass means the step succeeded.
	StatusPass Status = "pass"
	// StatusFail means the step failed; Cause and Fix say why and what to do.
	StatusFail Status = "fail"
	// StatusSkip means the step did not run: an earlier step failed, or the
	// configuration turns it off (Detail says which).
	StatusSkip Status = "skip"
)

// Step names, in the order they run.
const (
	StepCertificate = "certificate"
	StepTrust       = "trust"
	StepRevocation  = "revocation"
	StepMapping     = "mapping"
	StepTGT         = "tgt"
	StepS4U2Self    = "s4u2self"
	StepS4U2Proxy   = "s4u2proxy"
	StepExchange    = "exchange"
)

// Options is what Run needs. Config and CertPEM (or UPN) are required; the
// rest have defaults that reach the real directory, KDCs, CDPs and Exchange.
type Options struct {
	// Config is the live, validated configuration.
	Config *config.Config
	// CertPEM is the device certificate, PEM or DER; further PEM blocks
	// are taken as intermediates.
	CertPEM []byte
	// UPN diagnoses a user without a certificate (the 3 a.m. call names a
	// user, not a file): used only when CertPEM is empty. The certificate,
	// trust and revocation steps are skipped; mapping looks the UPN up in
	// the directory as the gateway does for a certificate's SAN UPN.
	UPN string
	// KeyPEM is the certificate's private key, optional: when set, the
	// certificate step checks that they belong together.
	KeyPEM []byte
	// ChainPEM holds intermediates the device sends with its certificate;
	// optional.
	ChainPEM []byte
	// SPN overrides the target SPN; empty means the first of kcd.targetSPN.
	SPN string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Exchanger sends KDC requests; nil means a kdc.Transport to the
	// configured domain controllers.
	Exchanger kdc.Exchanger
	// Lookup replaces the LDAP mapping (tests); nil means a certmap.Mapper
	// built from cert.mapping.*.
	Lookup certmap.Lookup
	// Fetcher downloads CRLs; nil means a fetch.Fetcher with a 30 s timeout.
	Fetcher *fetch.Fetcher
	// HTTPClient sends the request to Exchange; nil means a client trusting
	// segmesh.edge.exchangeCaFile (else the system roots), 30 s timeout.
	HTTPClient *http.Client
	// StepTimeout bounds one step; 0 means 30 s.
	StepTimeout time.Duration
	// Progress, when set, is called with each step's result as soon as the
	// step ends, so a long run shows its progress.
	Progress func(StepResult)
	// Note, when set, is called while a long step runs (one call per CRL
	// distribution point downloaded), so a big CRL shows progress.
	Note func(step, msg string)
	// Logger receives debug events; nil discards them.
	Logger *slog.Logger
}

// StepResult is one step's outcome.
type StepResult struct {
	// Name is the step's stable name (StepTrust, ...), for scripts.
	Name string `json:"name"`
	// Title says what the step checks, for people.
	Title string `json:"title"`
	// Status is pass, fail or skip.
	Status Status `json:"status"`
	// DurationMS is how long the step took, in milliseconds; 0 when skipped.
	DurationMS float64 `json:"duration_ms"`
	// Detail is what the step found (pass) or why it was skipped (skip).
	Detail string `json:"detail,omitempty"`
	// Cause is what went wrong; set only on fail.
	Cause string `json:"cause,omitempty"`
	// Fix is what to do about it; set only on fail.
	Fix string `json:"fix,omitempty"`
	// Code is a machine-readable reason on fail: a Kerberos code name
	// (KDC_ERR_BADOPTION), a trust reason (unknown_authority), "revoked",
	// "cdp_unreachable", "ldap_bind", ...; empty otherwise.
	Code string `json:"code,omitempty"`
}

// Duration returns DurationMS as a time.Duration.
func (r StepResult) Duration() time.Duration {
	return time.Duration(r.DurationMS * float64(time.Millisecond))
}

// CertInfo describes the certificate diagnosed.
type CertInfo struct {
	// Subject is the subject DN.
	Subject string `json:"subject"`
	// Issuer is the issuer DN.
	Issuer string `json:"issuer"`
	// Serial is the serial number in hexadecimal.
	Serial string `json:"serial"`
	// NotBefore and NotAfter are the validity period.
	NotBefore time.Time `json:"not_before"`
	// NotAfter is the end of the validity period.
	NotAfter time.Time `json:"not_after"`
	// SANUPNs are the UPNs in the subject alternative name.
	SANUPNs []string `json:"san_upns,omitempty"`
	// SHA256 is the certificate's fingerprint in hexadecimal.
	SHA256 string `json:"sha256"`
}

// UserInfo is the user the certificate maps to.
type UserInfo struct {
	// UPN is the user principal name asked for in S4U2Self.
	UPN string `json:"upn"`
	// Realm is the Kerberos realm of the UPN's suffix.
	Realm string `json:"realm"`
	// Source is ldap_mapping, alt_security_identities or certificate_san.
	Source string `json:"source"`
	// DN is the directory entry, when the directory was asked and knows it.
	DN string `json:"dn,omitempty"`
	// SANUPN is the certificate's SAN UPN when it was used.
	SANUPN string `json:"san_upn,omitempty"`
}

// Report is the whole run: `segmesh diagnose --json` prints it.
type Report struct {
	// OK reports whether every step passed or was skipped by configuration.
	OK bool `json:"ok"`
	// FailedStep names the first failing step; empty when OK.
	FailedStep string `json:"failed_step,omitempty"`
	// Config is the configuration file used.
	Config string `json:"config"`
	// SPN is the target SPN used.
	SPN string `json:"spn,omitempty"`
	// Started is when the run began.
	Started time.Time `json:"started"`
	// DurationMS is the whole run's duration in milliseconds.
	DurationMS float64 `json:"duration_ms"`
	// Certificate describes the certificate; nil when it did not parse.
	Certificate *CertInfo `json:"certificate,omitempty"`
	// User is the mapped user; nil when mapping did not run or failed.
	User *UserInfo `json:"user,omitempty"`
	// Exchange is what Exchange answered; nil when not asked.
	Exchange *ExchangeInfo `json:"exchange,omitempty"`
	// Steps are every step's result, in order.
	Steps []StepResult `json:"steps"`
}

// ExchangeInfo is Exchange's answer to the OPTIONS request.
type ExchangeInfo struct {
	// URL is the URL asked.
	URL string `json:"url"`
	// Status is the HTTP status code; 0 when no answer came.
	Status int `json:"status"`
	// ProtocolVersions is MS-ASProtocolVersions, when sent.
	ProtocolVersions string `json:"protocol_versions,omitempty"`
	// RemoteUser is the user the lab's Exchange stand-in says it saw
	// (X-Lab-Remote-User); empty for a real Exchange.
	RemoteUser string `json:"remote_user,omitempty"`
}

// step is one row of the table Run walks.
type step struct {
	name  string
	title string
	// needs names what a later step lacks when this one fails ("skipped:
	// needs a trusted chain").
	needs string
	// run does the step; a non-empty skip means the configuration turns it
	// off (the step is reported as skipped, and later steps still run).
	run func(ctx context.Context, st *state) (detail, skip string, err error)
	// fix explains err in the operator's words: the cause, the fix and a code.
	fix func(st *state, err error) (cause, fix, code string)
}

// Steps returns the step names in the order Run runs them.
func Steps() []string {
	var out []string
	for _, s := range table() {
		out = append(out, s.name)
	}
	return out
}

// table is the diagnosis, in request-path order.
func table() []step {
	return []step{
		{StepCertificate, "parse the certificate", "a certificate that parses", runCertificate, fixCertificate},
		{StepTrust, "chain and trust", "a chain to a trusted CA", runTrust, fixTrust},
		{StepRevocation, "revocation (CRLs fetched now)", "a certificate that is not revoked", runRevocation, fixRevocation},
		{StepMapping, "mapping: certificate to UPN", "a UPN for the certificate", runMapping, fixMapping},
		{StepTGT, "TGT for the service account", "the service account's TGT", runTGT, fixTGT},
		{StepS4U2Self, "S4U2Self (protocol transition)", "an S4U2Self ticket", runS4U2Self, fixS4U2Self},
		{StepS4U2Proxy, "S4U2Proxy (constrained delegation)", "a service ticket to the target SPN", runS4U2Proxy, fixS4U2Proxy},
		{StepExchange, "request to Exchange (OPTIONS /Microsoft-Server-ActiveSync)", "", runExchange, fixExchange},
	}
}

// Run diagnoses one certificate. It never returns an error: every failure
// is a failed step in the Report, and steps after it are skipped.
func Run(ctx context.Context, o Options) Report {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StepTimeout <= 0 {
		o.StepTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	st := &state{opts: o, cfg: o.Config}
	defer st.close()
	start := time.Now()
	rep := Report{OK: true, Started: o.Now().UTC()}
	if o.Config != nil {
		rep.Config = o.Config.Path
	}
	var failed *step
	for _, s := range table() {
		res := StepResult{Name: s.name, Title: s.title}
		if failed != nil {
			res.Status = StatusSkip
			res.Detail = "skipped: needs " + failed.needs
		} else {
			sctx, cancel := context.WithTimeout(ctx, o.StepTimeout)
			t0 := time.Now()
			detail, skip, err := st.runStep(sctx, s)
			cancel()
			res.DurationMS = float64(time.Since(t0).Microseconds()) / 1000
			switch {
			case err != nil:
				res.Status = StatusFail
				res.Cause, res.Fix, res.Code = st.fixStep(s, err)
				if res.Cause == "" {
					res.Cause = err.Error()
				}
				rep.OK, rep.FailedStep = false, s.name
				failed = &s
			case skip != "":
				res.Status, res.Detail = StatusSkip, skip
			default:
				res.Status, res.Detail = StatusPass, detail
			}
		}
		rep.Steps = append(rep.Steps, res)
		if o.Progress != nil {
			o.Progress(res)
		}
	}
	rep.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	rep.Certificate, rep.User, rep.Exchange, rep.SPN = st.certInfo, st.user, st.exchange, st.spn
	return rep
}

// state carries what one step hands the next.
type state struct {
	opts Options
	cfg  *config.Config

	leaf          *x509.Certificate
	intermediates []*x509.Certificate
	certInfo      *CertInfo
	store         *trust.Store
	verified      []*x509.Certificate

	user   *UserInfo
	mapper *certmap.Mapper
	// suffixUnmapped reports that the user's UPN suffix is no configured
	// domain: S4U2Self asks the primary realm for the enterprise name.
	suffixUnmapped bool

	client *s4u.Client
	self   *s4u.Ticket
	proxy  *s4u.Ticket
	spn    string

	exchange *ExchangeInfo
}

func (st *state) close() {
	if st.mapper != nil {
		_ = st.mapper.Close()
	}
}
