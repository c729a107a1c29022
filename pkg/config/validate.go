package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmesh/segmesh/pkg/certmap"
)

// hostnameRE matches a DNS name made of letters, digits and hyphens.
var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

// pemExts and pfxExts tell the two trust-store kinds apart.
var (
	pemExts = map[string]bool{".pem": true, ".cer": true, ".crt": true}
	pfxExts = map[string]bool{".pfx": true, ".p12": true}
)

// validate checks every rule and records each finding in r.
func validate(c *Config, r *Report) {
	validateTrust(c, r)
	validateKCD(c, r)
	validateMapping(c, r)
	validateRevocation(c, r)
	validateSegmesh(c, r)
	validateMistakes(c, r)
}

// TrustStoreKind says what clientCertTrustStorePath names.
type TrustStoreKind int

const (
	// TrustStoreNone means no local trust store; the console chain is the trust.
	TrustStoreNone TrustStoreKind = iota
	// TrustStorePEM means a list of PEM/CER files.
	TrustStorePEM
	// TrustStorePFX means one password-protected PFX.
	TrustStorePFX
)

// TrustStoreFiles returns the files clientCertTrustStorePath names, made
// absolute, and their kind. It does not check that they exist.
func (c *Config) TrustStoreFiles() ([]string, TrustStoreKind) {
	items := SplitList(c.ClientCertTrustStorePath)
	if len(items) == 0 {
		return nil, TrustStoreNone
	}
	out := make([]string, len(items))
	kind := TrustStorePEM
	for i, p := range items {
		out[i] = c.Resolve(p)
		if pfxExts[strings.ToLower(filepath.Ext(p))] {
			kind = TrustStorePFX
		}
	}
	return out, kind
}

func validateTrust(c *Config, r *Report) {
	const key = "clientCertTrustStorePath"
	items := SplitList(c.ClientCertTrustStorePath)
	var pems, pfxs, others []string
	for _, p := range items {
		lp := strings.ToLower(p)
		switch {
		case strings.HasPrefix(lp, "cert:"):
			r.add(SeverityError, key, p, "names a Windows certificate store; SEG V2 and segmesh read the chain of trust from files, not from the Microsoft Management Console",
				"export the issuing CAs (root and intermediate) as Base-64 X.509 (PEM) files, for example certutil -encode, and list those files separated by commas")
			continue
		case windowsPath(c, p):
			r.add(SeverityError, key, p, "is a Windows path (a drive letter or backslashes); on this machine paths use /",
				"write it with /, absolute or relative to the install directory, for example config/ssl-certs/CA01.pem")
		}
		switch ext := strings.ToLower(filepath.Ext(p)); {
		case pemExts[ext]:
			pems = append(pems, p)
		case pfxExts[ext]:
			pfxs = append(pfxs, p)
		default:
			others = append(others, p)
		}
	}
	v := c.ClientCertTrustStorePath
	switch {
	case len(pems) > 0 && len(pfxs) > 0:
		r.add(SeverityError, key, v, "names both PEM and PFX files; SEG allows one kind",
			"keep the PEM list (passcode \"\") or the one PFX (with its passcode)")
	case len(pfxs) > 1:
		r.add(SeverityError, key, v, "names more than one PFX file; SEG reads a single PFX",
			"combine the CA certificates into one PFX, or list them as PEM files")
	}
	for _, o := range others {
		r.add(SeverityError, key, o, "is neither a PEM (.pem, .cer, .crt) nor a PFX (.pfx, .p12) file",
			"convert the certificate to PEM or PFX and name that file")
	}
	pass := c.ClientCertTrustStorePasscode
	if len(pfxs) == 1 && len(pems) == 0 && !c.HasSecret("clientCertTrustStorePasscode") {
		r.add(SeverityError, "clientCertTrustStorePasscode", "", "the PFX trust store needs its passcode",
			`write the passcode with the suffix ".plaintext"; it is encrypted at the next start`)
	}
	if len(pems) > 0 && len(pfxs) == 0 && c.HasSecret("clientCertTrustStorePasscode") {
		r.add(SeverityIgnored, "clientCertTrustStorePasscode", pass.String(), "a PEM trust store has no passcode; the value is not used",
			`set it to ""`)
	}
	if len(items) > 0 && c.ClientCertificateChain != "" {
		r.add(SeverityIgnored, "clientCertificateChain", c.ClientCertificateChain,
			"a local trust store is configured, so the console-uploaded chain is not used (SEG: local trust takes precedence)",
			"add that CA to clientCertTrustStorePath if it must stay trusted")
	}
	if len(items) == 0 && c.ClientCertificateChain == "" && (c.KCD.Enabled || c.RequireClientCertificate) {
		r.add(SeverityError, key, "", "no trust for client certificates, but KCD or Require Client Certificate is on",
			"name the issuing CAs in clientCertTrustStorePath (PEM list or one PFX) or set clientCertificateChain")
	}
}

// windowsPath reports whether p is a Windows path that this machine will not
// find: a drive letter or backslashes, except SEG's own config\... relative
// paths in SEG's layout, which Resolve reads.
func windowsPath(c *Config, p string) bool {
	if runtime.GOOS == "windows" {
		return false
	}
	// Exactly Resolve's prefix: Config\... is not moved, so it is reported.
	if c.SEGLayout() && strings.HasPrefix(p, segConfigDir+`\`) {
		return false
	}
	drive := len(p) >= 2 && p[1] == ':' && (p[0]|0x20 >= 'a' && p[0]|0x20 <= 'z')
	return drive || strings.Contains(p, `\`)
}

func validateKCD(c *Config, r *Report) {
	k := c.KCD
	if !k.Enabled {
		if k.TargetSPN != "" || k.ServiceAccountUserName != "" || len(k.Domains) > 0 {
			r.add(SeverityIgnored, "kcd", "", "KCD settings are present but kcd.enabled is false; requests carry no Kerberos ticket",
				"set kcd.enabled to true to use them")
		}
		return
	}
	if k.TargetSPN == "" {
		r.add(SeverityError, "kcd.targetSPN", "", "KCD is on but no target SPN is set", "write HTTP/{exchangeName}, for example HTTP/mail.corp.example")
	}
	for _, spn := range SplitList(k.TargetSPN) {
		if err := checkSPN(spn); err != "" {
			r.add(SeverityError, "kcd.targetSPN", spn, err, "write HTTP/{exchangeName}, for example HTTP/mail.corp.example")
		}
	}
	u := k.ServiceAccountUserName
	switch {
	case u == "":
		r.add(SeverityError, "kcd.serviceAccountUserName", "", "KCD is on but no service account is set", "write the KCD service account's name, for example svc_seg")
	case strings.HasSuffix(u, "$"):
		r.add(SeverityError, "kcd.serviceAccountUserName", u, "is a computer account; SEG V2 does not support the computer account for Kerberos and impersonation",
			"create a service account (a user with an SPN, trusted for delegation) and use it")
	case strings.ContainsAny(u, `\/`):
		r.add(SeverityError, "kcd.serviceAccountUserName", u, `names a domain with the user (DOMAIN\user)`, "write the account name alone; its realm is the first domain in kcd.domains")
	}
	if !c.HasSecret("kcd.serviceAccountPassword") {
		r.add(SeverityError, "kcd.serviceAccountPassword", "", "KCD is on but the service account password is empty",
			`write the password with the suffix ".plaintext"; it is encrypted at the next start`)
	}
	if len(k.Domains) == 0 {
		r.add(SeverityError, "kcd.domains", "", "KCD is on but no domain / domain controller pair is set",
			`add {"domain": "CORP.EXAMPLE", "domainController": "dc1.corp.example"}`)
	}
	for i, d := range k.Domains {
		key := fmt.Sprintf("kcd.domains[%d]", i)
		switch {
		case d.Domain == "" && d.DomainController == "":
			r.add(SeverityError, key, "", "empty domain / domain controller pair", "remove it or fill both")
			continue
		case d.Domain == "":
			r.add(SeverityError, key+".domain", "", "a domain controller without its domain; domains and domain controllers are added in pairs",
				"write the domain (realm) in upper case beside "+d.DomainController)
		}
		if d.Domain != "" && d.Domain != strings.ToUpper(d.Domain) {
			r.add(SeverityError, key+".domain", d.Domain, "the domain must be in upper case (Kerberos realms are case-sensitive)",
				fmt.Sprintf("write %q", strings.ToUpper(d.Domain)))
		}
		if d.DomainController != "" {
			if msg := checkFQDN(d.DomainController); msg != "" {
				r.add(SeverityError, key+".domainController", d.DomainController, msg,
					"write the DC's fully qualified domain name, for example dc1."+strings.ToLower(orDefault(d.Domain, "corp.example")))
			}
		}
	}
}

func validateMapping(c *Config, r *Report) {
	g := c.Gateway
	if !g.CertMappingEnabled {
		return
	}
	if !c.KCD.Enabled {
		r.add(SeverityIgnored, KeyCertMappingEnabled, "true", "certificate mapping is considered false when KCD authentication is off (as in SEG)",
			"turn KCD on to use certificate mapping")
		return
	}
	if g.CertMappingLDAPURL == "" {
		r.add(SeverityError, KeyCertMappingLDAPURL, "", "certificate mapping is on but no LDAP URL is set",
			"write protocol://host:port[/baseDN], for example ldaps://dc1.corp.example:3269")
	} else if ep, err := certmap.ParseURL(g.CertMappingLDAPURL); err != nil {
		// The identity role's own parser: what it refuses at start, check refuses.
		reason, value := err.Error(), ""
		if ue, ok := errors.AsType[*certmap.URLError](err); ok {
			reason, value = ue.Reason, ue.Raw // Raw hides a password in the URL
		}
		r.add(SeverityError, KeyCertMappingLDAPURL, value, reason, certmap.URLFix)
	} else if ep.Discover && !ep.TLS && !c.Segmesh.Identity.LDAPStartTLS {
		// The identity role refuses it too (certmap.New): the host comes from
		// DNS, which nobody authenticates.
		r.add(SeverityError, KeyCertMappingLDAPURL, g.CertMappingLDAPURL,
			"finds the Global Catalogs in DNS and binds without TLS: a spoofed DNS answer would receive the service account's password in clear",
			certmap.DiscoveryTLSFix)
	} else if !ep.TLS && !c.Segmesh.Identity.LDAPStartTLS {
		r.add(SeverityWarning, KeyCertMappingLDAPURL, g.CertMappingLDAPURL, "LDAP without TLS sends the service account password in clear",
			"use ldaps:// (port 636, or 3269 for the Global Catalog), or set segmesh.identity.ldapStartTls")
	}
	if g.CertMappingLDAPUser == "" {
		r.add(SeverityError, KeyCertMappingLDAPUser, "", "certificate mapping is on but no bind user is set",
			"write the KCD service account's distinguished name, for example CN=svc_seg,CN=Users,DC=corp,DC=example")
	} else if !strings.Contains(g.CertMappingLDAPUser, "=") {
		r.add(SeverityError, KeyCertMappingLDAPUser, g.CertMappingLDAPUser, "is not a distinguished name; the LDAP bind needs the DN of the KCD service account",
			"write it as a DN, for example "+suggestDN(c, g.CertMappingLDAPUser)+" (PowerShell: (Get-ADUser "+accountName(g.CertMappingLDAPUser)+").DistinguishedName gives the exact one)")
	}
}

// accountName returns the account part of a UPN (svc@corp.example → svc),
// or name itself.
func accountName(name string) string {
	user, _, _ := strings.Cut(strings.TrimSpace(name), "@")
	return user
}

// suggestDN guesses the DN of an account in the default Users container:
// from a UPN's own suffix (svc@corp.test → CN=svc,CN=Users,DC=corp,DC=test),
// else from the first KCD domain, else corp.example.
func suggestDN(c *Config, name string) string {
	user, suffix, ok := strings.Cut(strings.TrimSpace(name), "@")
	if !ok || suffix == "" {
		suffix = "corp.example"
		if len(c.KCD.Domains) > 0 && c.KCD.Domains[0].Domain != "" {
			suffix = c.KCD.Domains[0].Domain
		}
	}
	var dcs []string
	for _, label := range strings.Split(strings.ToLower(suffix), ".") {
		if label != "" {
			dcs = append(dcs, "DC="+label)
		}
	}
	return "CN=" + user + ",CN=Users," + strings.Join(dcs, ",")
}

// RevocationHonoured reports whether enable.cert.revocation.validation takes
// effect: only with KCD or Require Client Certificate on.
func (c *Config) RevocationHonoured() bool {
	return c.Gateway.RevocationEnabled && (c.KCD.Enabled || c.RequireClientCertificate)
}

// CRLRefreshInterval is the CRL refresh interval in force:
// segmesh.crl.fetchIntervalSeconds when set, else
// remote.crl.fetch.interval.in.minutes. The crl role fetches on it; the edge
// reports not ready when its revocation stream has been down longer.
func (c *Config) CRLRefreshInterval() time.Duration {
	if s := c.Segmesh.CRL.FetchIntervalSeconds; s > 0 {
		return time.Duration(s) * time.Second
	}
	return time.Duration(c.Gateway.CRLFetchIntervalMinutes) * time.Minute
}

// MappingHonoured reports whether cert.mapping.enabled takes effect: only with KCD on.
func (c *Config) MappingHonoured() bool {
	return c.Gateway.CertMappingEnabled && c.KCD.Enabled
}

func validateRevocation(c *Config, r *Report) {
	g := c.Gateway
	if g.RevocationEnabled && !c.RevocationHonoured() {
		r.add(SeverityIgnored, KeyRevocationEnabled, "true", "revocation checking is used only when KCD or Require Client Certificate is on (as in SEG)",
			"turn on KCD or requireClientCertificate")
	}
	if !g.RevocationEnabled && len(g.CRLURIs) > 0 {
		r.add(SeverityIgnored, KeyCRLURIs, strings.Join(g.CRLURIs, ","), "distribution points are set but revocation checking is off",
			"set "+KeyRevocationEnabled+" to true to use them")
	}
	for _, u := range g.CRLURIs {
		pu, err := url.Parse(u)
		lower := strings.ToLower(u)
		switch {
		case strings.HasPrefix(lower, "ldap:") || strings.HasPrefix(lower, "ldaps:"):
			// Before the host check: AD CS's default CDP, ldap:///CN=...,
			// has no host.
			r.add(SeverityError, KeyCRLURIs, u, "SEG fetches CRLs over HTTP only; an LDAP CDP (AD CS's default) is not supported",
				"publish the CRL over HTTP (AD CS: install Certification Authority Web Enrollment) and name that URL")
		case err != nil || pu.Hostname() == "":
			r.add(SeverityError, KeyCRLURIs, u, "not a URL with a host", "write http://host/path/ca.crl, separated by commas")
		case pu.Scheme != "http" && pu.Scheme != "https":
			r.add(SeverityError, KeyCRLURIs, u, "not an http(s) URL", "write http://host/path/ca.crl")
		}
	}
	if c.RevocationHonoured() && len(g.CRLURIs) == 0 && !c.Segmesh.CRL.UseCertificateCDPs {
		r.add(SeverityError, KeyCRLURIs, "", "revocation checking is on but no distribution point is set",
			"list the CRL URLs, comma separated, or set segmesh.crl.useCertificateCdps")
	}
	if c.Segmesh.CRL.FetchIntervalSeconds < 0 {
		r.add(SeverityError, "segmesh.crl.fetchIntervalSeconds", strconv.Itoa(c.Segmesh.CRL.FetchIntervalSeconds), "must not be negative", "write 0 to use "+KeyCRLFetchIntervalMinutes)
	}
}

func validateSegmesh(c *Config, r *Report) {
	s := c.Segmesh
	for key, addr := range map[string]string{"segmesh.edge.listen": s.Edge.Listen, "segmesh.admin.listen": s.Admin.Listen, "segmesh.grpc.listen": s.GRPC.Listen} {
		if addr == "" && key == "segmesh.grpc.listen" {
			continue
		}
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			r.add(SeverityError, key, addr, "not a host:port listen address", "write for example 127.0.0.1:8443 or :8443")
		}
	}
	g := s.GRPC
	if set := countSet(g.CertFile, g.KeyFile, g.CAFile); set != 0 && set != 3 {
		r.add(SeverityError, "segmesh.grpc.certFile", g.CertFile, "mTLS between roles needs certFile, keyFile and caFile together",
			"set all three, or none for plaintext on loopback or inside a mesh")
	}
	validateGRPCExposure(g, r)
	validateAdminExposure(s.Admin, r)
	e := s.Edge
	hasPEM := e.ServerCertFile != "" || e.ServerKeyFile != ""
	switch {
	case hasPEM && e.ServerPFXFile != "":
		r.add(SeverityError, "segmesh.edge.serverPfxFile", e.ServerPFXFile, "both a PEM certificate/key and a PFX are set for the edge", "keep one")
	case hasPEM && (e.ServerCertFile == "" || e.ServerKeyFile == ""):
		r.add(SeverityError, "segmesh.edge.serverCertFile", e.ServerCertFile, "the edge's PEM certificate and key go together", "set both serverCertFile and serverKeyFile")
	case !hasPEM && e.ServerPFXFile == "":
		r.add(SeverityWarning, "segmesh.edge.serverCertFile", "", "no server certificate: the edge makes a self-signed one at start, which devices will not trust",
			"set serverCertFile and serverKeyFile, or serverPfxFile")
	}
	// No Exchange URL at all is the edge role's error (services/edge
	// Validate): a process that runs no edge needs none.
	for i, u := range e.ExchangeURLs {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			r.add(SeverityError, fmt.Sprintf("segmesh.edge.exchangeUrls[%d]", i), u, "not an http(s) URL", "write for example https://mail.corp.example")
		} else if pu.Scheme == "http" {
			msg := "is plain http: every user's mail crosses the network to Exchange in clear, readable and changeable on the way"
			if c.KCD.Enabled {
				msg = "is plain http: every user's mail and Kerberos authenticator cross the network to Exchange in clear, and there is no TLS channel to bind the authenticator to, so Exchange's Extended Protection (on by default since Exchange 2019 CU14) cannot work, and a virtual directory set to Require refuses every request"
			}
			r.add(SeverityWarning, fmt.Sprintf("segmesh.edge.exchangeUrls[%d]", i), u, msg,
				"use https:// with Exchange's certificate (segmesh.edge.exchangeCaFile when it is not publicly trusted)")
		}
	}
	if e.DrainGraceSeconds < 0 || e.DrainGraceSeconds > MaxDrainGraceSeconds {
		r.add(SeverityError, "segmesh.edge.drainGraceSeconds", strconv.Itoa(e.DrainGraceSeconds),
			fmt.Sprintf("must be between 0 and %d: the whole stop is bounded by the %d s drain, and requests still running need part of it", MaxDrainGraceSeconds, DrainTimeoutSeconds),
			"write 5 behind a balancer or in Kubernetes (endpoints update within seconds), 0 for a single gateway")
	}
	if e.DrainSpreadMillis < 0 || e.DrainSpreadMillis > MaxDrainSpreadMillis {
		r.add(SeverityError, "segmesh.edge.drainSpreadMillis", strconv.Itoa(e.DrainSpreadMillis),
			fmt.Sprintf("must be between 0 and %d: the window is part of the %d s drain, and requests still running need the rest of it", MaxDrainSpreadMillis, DrainTimeoutSeconds),
			"write 0 to answer the held Pings all at once, or a window such as 1000 so that the devices do not all reconnect in the same instant")
	}
	if n := e.RelayMaxConnsPerHost; n < 0 || n > MaxRelayMaxConnsPerHost {
		r.add(SeverityError, "segmesh.edge.relayMaxConnsPerHost", strconv.Itoa(n),
			fmt.Sprintf("must be between 0 (no cap) and %d connections per Exchange server (each needs a local port)", MaxRelayMaxConnsPerHost),
			"leave it out (or write 0) for no cap, or write the most connections an edge may open to each Exchange server")
	}
	if e.HTTP1Engine != "" && !slices.Contains(HTTP1Engines, e.HTTP1Engine) {
		r.add(SeverityError, "segmesh.edge.http1Engine", e.HTTP1Engine, "unknown HTTP/1.1 engine",
			"write \"relay\" (the default, the edge's own engine) or \"net/http\" (httputil.ReverseProxy, the engine before it; docs/benchmarks.md)")
	}
	for i, p := range e.Paths {
		if !strings.HasPrefix(p, "/") {
			r.add(SeverityError, fmt.Sprintf("segmesh.edge.paths[%d]", i), p, "a path prefix must start with /", "write for example /Microsoft-Server-ActiveSync")
		}
	}
	switch s.Telemetry.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		r.add(SeverityError, "segmesh.telemetry.logLevel", s.Telemetry.LogLevel, "unknown log level", "write debug, info, warn or error")
	}
	switch s.Telemetry.LogFormat {
	case "text", "json":
	default:
		r.add(SeverityError, "segmesh.telemetry.logFormat", s.Telemetry.LogFormat, "unknown log format", "write text or json")
	}
	for suffix, realm := range s.Identity.UPNSuffixRealms {
		if !c.hasDomain(realm) {
			r.add(SeverityError, "segmesh.identity.upnSuffixRealms."+suffix, realm, "maps to a realm that is not in kcd.domains", "map it to one of the configured domains")
		}
	}
	for key, n := range map[string]int{"segmesh.ticket.cacheSize": s.Ticket.CacheSize, "segmesh.ticket.kdcTimeoutSeconds": s.Ticket.KDCTimeoutSeconds,
		"segmesh.ticket.maxConcurrentKdcExchanges": s.Ticket.MaxConcurrentKDCExchanges, "segmesh.identity.cacheTtlSeconds": s.Identity.CacheTTLSeconds,
		"segmesh.identity.negativeCacheTtlSeconds": s.Identity.NegativeCacheTTLSeconds, "segmesh.identity.ldapPoolSize": s.Identity.LDAPPoolSize} {
		if n < 0 {
			r.add(SeverityError, key, strconv.Itoa(n), "must not be negative", "write a positive number, or remove the key for the default")
		}
	}
}

// validateGRPCExposure fails closed on the inter-role listener: whoever
// passes it can ask the ticket role for any user's ticket and session key.
func validateGRPCExposure(g GRPC, r *Report) {
	peers := strings.Join(g.AllowedPeers, ",")
	mtls := g.CertFile != ""
	switch {
	case g.Listen == "":
		if g.MeshProvidesMTLS {
			r.add(SeverityIgnored, "segmesh.grpc.meshProvidesMtls", "true", "segmesh.grpc.listen is empty: this process serves no gRPC to other processes", "remove it, or set segmesh.grpc.listen")
		}
		return
	case mtls && g.MeshProvidesMTLS:
		r.add(SeverityIgnored, "segmesh.grpc.meshProvidesMtls", "true", "segmesh's own mTLS is configured, so callers are checked by their certificate, not by the mesh's header",
			"remove meshProvidesMtls, or remove certFile, keyFile and caFile to rely on the mesh")
	case !mtls && !g.MeshProvidesMTLS && !IsLoopbackListen(g.Listen):
		r.add(SeverityError, "segmesh.grpc.listen", g.Listen, "serves gRPC without TLS on an address other than loopback: whoever reaches it can ask the ticket role for any user's ticket and session key",
			"set segmesh.grpc.certFile, keyFile, caFile and allowedPeers; or listen on 127.0.0.1; or, inside a mesh whose mTLS is STRICT on this port (Istio), set segmesh.grpc.meshProvidesMtls")
		return
	case !mtls && !g.MeshProvidesMTLS:
		r.add(SeverityWarning, "segmesh.grpc.listen", g.Listen, "serves gRPC without TLS on loopback: any local process can ask the ticket role for any user's ticket",
			"set segmesh.grpc.certFile, keyFile, caFile and allowedPeers unless this host runs nothing else")
		if len(g.AllowedPeers) > 0 {
			r.add(SeverityIgnored, "segmesh.grpc.allowedPeers", peers, "peer identities come from client certificates (or a mesh), and segmesh.grpc has no certificate",
				"set segmesh.grpc.certFile, keyFile and caFile")
		}
		return
	}
	if len(g.AllowedPeers) == 0 {
		r.add(SeverityError, "segmesh.grpc.allowedPeers", "", "gRPC listens but no caller identity is allowed, so every call would be refused (an empty list no longer admits any verified certificate)",
			`list the edges' identities, for example ["spiffe://cluster.local/ns/segmesh/sa/segmesh-edge"]`)
	}
}

// validateAdminExposure warns when the admin port is reachable beyond this
// host without a token: /metrics, /status and /status.json (and the
// profiles, the personal data when turned on) are open to whoever reaches it.
func validateAdminExposure(a Admin, r *Report) {
	if a.TokenFile != "" || IsLoopbackListen(a.Listen) {
		return
	}
	what := "/metrics, /status and /status.json"
	if a.Pprof {
		what += ", the Go profiles under /debug/pprof/"
	}
	if a.ShowPersonalData {
		what += " with users' UPNs, certificate subjects and serials"
	}
	r.add(SeverityWarning, "segmesh.admin.listen", a.Listen, "the admin port listens beyond this host without authentication: "+what+" are open to whoever reaches it",
		"set segmesh.admin.tokenFile (a bearer token; /healthz and /readyz stay open for probes), or let only the monitoring system reach the port (the Kubernetes overlays' NetworkPolicy and AuthorizationPolicy do)")
}

// IsLoopbackListen reports whether the listen address addr binds only a
// loopback address (127.0.0.0/8, ::1 or localhost); ":9443" and
// "0.0.0.0:9443" bind every interface and are not.
func IsLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *Config) hasDomain(realm string) bool {
	for _, d := range c.KCD.Domains {
		if d.Domain == realm {
			return true
		}
	}
	return false
}

// checkSPN returns why spn is not of the form HTTP/host, or "".
func checkSPN(spn string) string {
	svc, host, ok := strings.Cut(spn, "/")
	switch {
	case !ok:
		return "not of the form HTTP/{exchangeName}"
	case svc != "HTTP":
		if strings.EqualFold(svc, "HTTP") {
			return "the service class must be written HTTP, in upper case"
		}
		return "the service class must be HTTP (Exchange's SPN is HTTP/{exchangeName})"
	case host == "" || strings.ContainsAny(host, "/@ "):
		return "the host part must be Exchange's name, with no realm, port or spaces"
	case !hostnameRE.MatchString(host):
		return "the host part is not a valid host name"
	}
	return ""
}

// checkFQDN returns why dc is not a fully qualified host name (optionally
// with :port), or "".
func checkFQDN(dc string) string {
	host := dc
	if h, p, err := net.SplitHostPort(dc); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return "the port is not a number from 1 to 65535"
		}
		host = h
	}
	switch {
	case net.ParseIP(host) != nil:
		return "is an IP address; SEG needs the domain controller's fully qualified domain name"
	case !hostnameRE.MatchString(host):
		return "is not a valid host name"
	case !strings.Contains(host, "."):
		return "is a short name; the domain controller must be a fully qualified domain name (SEG V2 migration note)"
	}
	return ""
}

func countSet(vals ...string) int {
	n := 0
	for _, v := range vals {
		if v != "" {
			n++
		}
	}
	return n
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
