package diagnose

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmesh/segmesh/pkg/certmap"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/negotiate"
	"github.com/segmesh/segmesh/pkg/trust"
	"github.com/segmesh/segmesh/pkg/upn"
	"github.com/segmesh/segmesh/services/edge"
	"github.com/segmesh/segmesh/services/identity"
	"github.com/segmesh/segmesh/services/ticket"
)

// kcdOff is why the Kerberos steps are skipped when KCD is off.
const kcdOff = "KCD is off (kcd.enabled is false): no user mapping and no Kerberos ticket; requests go to Exchange without Negotiate"

// parseCerts reads PEM blocks of type CERTIFICATE, or one DER certificate.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PEM certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) > 0 {
		return out, nil
	}
	c, err := x509.ParseCertificate(data)
	if err != nil {
		return nil, fmt.Errorf("neither PEM nor DER certificate: %w", err)
	}
	return []*x509.Certificate{c}, nil
}

// noCertificate is the skip reason of the certificate steps with --upn.
const noCertificate = "no certificate: diagnosing the user named by --upn"

// byUPN reports whether the run names a user instead of a certificate.
func (st *state) byUPN() bool { return len(st.opts.CertPEM) == 0 && st.opts.UPN != "" }

func runCertificate(_ context.Context, st *state) (string, string, error) {
	if st.byUPN() {
		return "", noCertificate, nil
	}
	certs, err := parseCerts(st.opts.CertPEM)
	if err != nil {
		return "", "", err
	}
	st.leaf, st.intermediates = certs[0], certs[1:]
	if len(st.opts.ChainPEM) > 0 {
		chain, err := parseCerts(st.opts.ChainPEM)
		if err != nil {
			return "", "", fmt.Errorf("chain: %w", err)
		}
		for _, c := range chain {
			if !c.Equal(st.leaf) && !slices.ContainsFunc(st.intermediates, c.Equal) {
				st.intermediates = append(st.intermediates, c)
			}
		}
	}
	sum := sha256.Sum256(st.leaf.Raw)
	info := &CertInfo{
		Subject: st.leaf.Subject.String(), Issuer: st.leaf.Issuer.String(),
		Serial: strings.ToUpper(st.leaf.SerialNumber.Text(16)), NotBefore: st.leaf.NotBefore.UTC(), NotAfter: st.leaf.NotAfter.UTC(),
		SHA256: hex.EncodeToString(sum[:]),
	}
	info.SANUPNs, _ = upn.All(st.leaf)
	st.certInfo = info
	if len(st.opts.KeyPEM) > 0 {
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: st.leaf.Raw})
		if _, err := tls.X509KeyPair(certPEM, st.opts.KeyPEM); err != nil {
			return "", "", &keyMismatchError{err: err}
		}
	}
	d := fmt.Sprintf("%s, issued by %s, serial %s, valid until %s", info.Subject, info.Issuer, info.Serial, info.NotAfter.Format(time.DateOnly))
	if len(info.SANUPNs) > 0 {
		d += ", SAN UPN " + strings.Join(info.SANUPNs, ", ")
	} else {
		d += ", no UPN in the SAN"
	}
	if len(st.opts.KeyPEM) > 0 {
		d += ", key matches"
	}
	return d, "", nil
}

// keyMismatchError is a --key that does not belong to the certificate.
type keyMismatchError struct{ err error }

func (e *keyMismatchError) Error() string {
	return "the private key does not belong to the certificate: " + e.err.Error()
}
func (e *keyMismatchError) Unwrap() error { return e.err }

// note reports progress inside a step.
func (st *state) note(step, msg string) {
	if st.opts.Note != nil {
		st.opts.Note(step, msg)
	}
}

func runTrust(_ context.Context, st *state) (string, string, error) {
	if st.byUPN() {
		return "", noCertificate, nil
	}
	spec, err := st.cfg.TrustSpec()
	if err != nil {
		return "", "", err
	}
	store, err := trust.Load(spec)
	if err != nil {
		return "", "", err
	}
	st.store = store
	chains, err := trust.VerifyClientChain(store, append([]*x509.Certificate{st.leaf}, st.intermediates...), st.opts.Now())
	if err != nil {
		return "", "", err
	}
	st.verified = chains[0]
	names := make([]string, len(st.verified))
	for i, c := range st.verified {
		names[i] = commonName(c)
	}
	return fmt.Sprintf("%s (trust: %s)", strings.Join(names, " → "), store.Source()), "", nil
}

func commonName(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	return c.Subject.String()
}

func runMapping(ctx context.Context, st *state) (string, string, error) {
	c := st.cfg
	if !c.KCD.Enabled {
		return "", kcdOff, nil
	}
	// The identity role's own builder: StartTLS, strong mapping and the
	// fallback while the directory is down mean here what they mean there.
	parts, err := identity.ConfigFrom(c).Build(identity.BuildOptions{
		Lookup: st.opts.Lookup, NoCache: true, Now: st.opts.Now, Logger: st.opts.Logger,
	})
	if err != nil {
		return "", "", err
	}
	st.mapper = parts.Mapper
	mapped := c.MappingHonoured()
	if st.byUPN() {
		return mapUPN(ctx, st, parts)
	}
	r := parts.Resolver
	id, err := r.Resolve(ctx, st.leaf)
	if err != nil {
		return "", "", err
	}
	st.user = &UserInfo{UPN: id.UPN.String(), Realm: id.UPN.Realm, Source: id.Source.String(), DN: id.DN, SANUPN: id.SANUPN}
	st.suffixUnmapped = id.UPN.SuffixUnmapped
	var d string
	switch id.Source {
	case certmap.SourceLDAP:
		d = fmt.Sprintf("%s from the LDAP mapping (userCertificate on %s)", id.UPN, id.DN)
	case certmap.SourceAltSecurityIdentities:
		d = fmt.Sprintf("%s: the certificate's SAN UPN %s is altSecurityIdentities Kerberos:%s of %s", id.UPN, id.SANUPN, id.SANUPN, id.DN)
	case certmap.SourceLoginIdentity:
		d = fmt.Sprintf("%s: %s found %s by the certificate's %s (userPrincipalName, mail, proxyAddresses or altSecurityIdentities)", id.UPN, certmap.KeyLoginIdentity, id.DN, id.SANUPN)
	default:
		d = fmt.Sprintf("%s from the certificate SAN", id.UPN)
		if mapped {
			d += " (no user holds the certificate in userCertificate)"
		} else {
			d += " (certificate mapping off)"
		}
	}
	if st.mapper != nil && st.mapper.GlobalCatalogNote() != "" {
		d += "; " + st.mapper.GlobalCatalogNote()
	}
	if id.UPN.SuffixUnmapped {
		return fmt.Sprintf("%s; its suffix %s is no configured domain: the KDC of %s is asked for the enterprise name", d, id.UPN.Suffix, id.UPN.Realm), "", nil
	}
	return fmt.Sprintf("%s, realm %s", d, id.UPN.Realm), "", nil
}

// mapUPN is the mapping step for --upn: the realm of the UPN's suffix and,
// with mapping on, the directory's user for it (by userPrincipalName, else
// altSecurityIdentities Kerberos:<upn>, as the gateway translates a SAN UPN).
func mapUPN(ctx context.Context, st *state, parts identity.Parts) (string, string, error) {
	given, err := parts.Realms.Resolve(strings.TrimSpace(st.opts.UPN))
	if err != nil {
		return "", "", err
	}
	st.user = &UserInfo{UPN: given.String(), Realm: given.Realm, Source: "upn_given"}
	st.suffixUnmapped = given.SuffixUnmapped
	lookup := st.opts.Lookup
	if lookup == nil && parts.Mapper != nil {
		lookup = parts.Mapper
	}
	if lookup == nil {
		return fmt.Sprintf("%s as given (certificate mapping off: the directory is not asked), realm %s", given, given.Realm), "", nil
	}
	m, err := lookup.MapUPN(ctx, given.String())
	var nf *certmap.NotFoundError
	switch {
	case errors.As(err, &nf):
		return fmt.Sprintf("%s as given: no user has it as userPrincipalName or altSecurityIdentities Kerberos:%s (S4U2Self will say whether the KDC knows it), realm %s", given, given, given.Realm), "", nil
	case err != nil:
		return "", "", err
	}
	mapped, err := parts.Realms.Resolve(m.UPN)
	if err != nil {
		return "", "", err
	}
	st.user = &UserInfo{UPN: mapped.String(), Realm: mapped.Realm, Source: "upn_given", DN: m.DN}
	if !strings.EqualFold(m.UPN, given.String()) {
		return fmt.Sprintf("%s: %s is altSecurityIdentities Kerberos:%s of %s, realm %s", mapped, given, given, m.DN, mapped.Realm), "", nil
	}
	return fmt.Sprintf("%s is %s in the directory, realm %s", mapped, m.DN, mapped.Realm), "", nil
}

func runTGT(ctx context.Context, st *state) (string, string, error) {
	c := st.cfg
	if !c.KCD.Enabled {
		return "", kcdOff, nil
	}
	// The ticket role's own builder: the same realms, domain controllers,
	// timeout and service account.
	tc := ticket.ConfigFrom(c)
	primary, realms := tc.Realm, tc.KDCs
	var mu sync.Mutex
	var dns []string
	answered := map[string]string{}
	client, err := tc.Build(ticket.BuildOptions{Exchanger: st.opts.Exchanger, Now: st.opts.Now, Logger: st.opts.Logger,
		KDCHooks: kdc.Hooks{
			// What DNS returned for realms without a domain controller, and
			// which KDC answered: the detail of this step.
			OnDiscover: func(i kdc.DiscoverInfo) {
				mu.Lock()
				defer mu.Unlock()
				if i.Err == nil {
					// A failed lookup is in the step's error already.
					dns = append(dns, i.Answer.String())
				}
			},
			OnExchange: func(i kdc.ExchangeInfo) {
				mu.Lock()
				defer mu.Unlock()
				if i.KDC != "" {
					answered[strings.ToUpper(i.Realm)] = i.KDC
				}
			},
		}})
	if err != nil {
		return "", "", err
	}
	st.client = client
	tgt, err := client.TGT(ctx, primary)
	mu.Lock()
	defer mu.Unlock()
	from := strings.Join(realms[primary], ", ")
	if len(realms[primary]) == 0 {
		from = "the KDCs in DNS"
	}
	if k := answered[primary]; k != "" {
		from = "KDC " + k
	}
	if len(dns) > 0 {
		from += " (DNS SRV " + strings.Join(dns, "; ") + ")"
	}
	if err != nil {
		if len(dns) > 0 {
			return "", "", fmt.Errorf("%w (DNS SRV %s)", err, strings.Join(dns, "; "))
		}
		return "", "", err
	}
	return fmt.Sprintf("krbtgt/%s for %s from %s, valid until %s", primary, tgt.ClientString(), from,
		tgt.EndTime.UTC().Format(time.RFC3339)), "", nil
}

func runS4U2Self(ctx context.Context, st *state) (string, string, error) {
	if !st.cfg.KCD.Enabled {
		return "", kcdOff, nil
	}
	t, err := st.client.S4U2Self(ctx, st.user.UPN)
	if err != nil {
		return "", "", err
	}
	st.self = t
	d := fmt.Sprintf("ticket for %s to %s", t.ClientString(), strings.Join(t.SName.NameString, "/"))
	if t.Forwardable() {
		d += ", forwardable"
	} else {
		d += ", NOT forwardable (S4U2Proxy will be refused)"
	}
	return d, "", nil
}

func targetSPN(st *state) string {
	if st.opts.SPN != "" {
		return st.opts.SPN
	}
	if l := config.SplitList(st.cfg.KCD.TargetSPN); len(l) > 0 {
		return l[0]
	}
	return ""
}

func runS4U2Proxy(ctx context.Context, st *state) (string, string, error) {
	st.spn = targetSPN(st)
	if !st.cfg.KCD.Enabled {
		return "", kcdOff, nil
	}
	t, err := st.client.S4U2Proxy(ctx, st.self, st.spn)
	if err != nil {
		return "", "", err
	}
	st.proxy = t
	return fmt.Sprintf("ticket to %s for %s, valid until %s", st.spn, t.ClientString(), t.EndTime.UTC().Format(time.RFC3339)), "", nil
}

// httpStatusError is an answer from Exchange that is not 2xx.
type httpStatusError struct {
	url    string
	status int
	auth   string // WWW-Authenticate schemes, never a token
}

func (e *httpStatusError) Error() string {
	s := fmt.Sprintf("OPTIONS %s answered %d %s", e.url, e.status, http.StatusText(e.status))
	if e.auth != "" {
		s += " (WWW-Authenticate: " + e.auth + ")"
	}
	return s
}

// errNoUpstream means segmesh.edge.exchangeUrls is empty.
var errNoUpstream = errors.New("no Exchange URL is configured (segmesh.edge.exchangeUrls is empty)")

func (st *state) httpClient() (*http.Client, error) {
	if st.opts.HTTPClient != nil {
		return st.opts.HTTPClient, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	caFile := st.cfg.Segmesh.Edge.ExchangeCAFile
	if caFile != "" {
		caFile = st.cfg.Resolve(caFile)
	}
	tc, err := edge.ExchangeTLS(caFile) // the edge's own builder
	if err != nil {
		return nil, err
	}
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

func runExchange(ctx context.Context, st *state) (string, string, error) {
	urls := st.cfg.Segmesh.Edge.ExchangeURLs
	if len(urls) == 0 {
		return "", "", errNoUpstream
	}
	u := strings.TrimSuffix(urls[0], "/") + "/Microsoft-Server-ActiveSync"
	st.exchange = &ExchangeInfo{URL: u}
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, u, nil)
	if err != nil {
		return "", "", err
	}
	req.Header.Set("User-Agent", "segmesh-diagnose")
	if st.proxy != nil {
		b, err := negotiate.New(st.proxy.DER, st.proxy.SessionKey, st.proxy.CName, st.proxy.CRealm, negotiate.Options{Now: st.opts.Now})
		if err != nil {
			return "", "", fmt.Errorf("build the Negotiate header: %w", err)
		}
		h, err := b.Header()
		if err != nil {
			return "", "", fmt.Errorf("build the Negotiate header: %w", err)
		}
		req.Header.Set("Authorization", h)
	}
	client, err := st.httpClient()
	if err != nil {
		return "", "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", "", err
	}
	_ = resp.Body.Close()
	st.exchange.Status = resp.StatusCode
	st.exchange.ProtocolVersions = resp.Header.Get("MS-ASProtocolVersions")
	st.exchange.RemoteUser = resp.Header.Get("X-Lab-Remote-User")
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var schemes []string
		for _, v := range resp.Header.Values("WWW-Authenticate") {
			s, _, _ := strings.Cut(v, " ")
			schemes = append(schemes, s)
		}
		return "", "", &httpStatusError{url: u, status: resp.StatusCode, auth: strings.Join(schemes, ", ")}
	}
	d := fmt.Sprintf("%s answered %d", u, resp.StatusCode)
	if st.exchange.ProtocolVersions != "" {
		d += ", MS-ASProtocolVersions " + st.exchange.ProtocolVersions
	}
	if st.exchange.RemoteUser != "" {
		d += ", authenticated as " + st.exchange.RemoteUser
	}
	return d, "", nil
}
