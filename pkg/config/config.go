package config

import (
	"github.com/segmesh/segmesh/pkg/secret"
)

// Config is the whole of config.json after parsing, with defaults applied.
type Config struct {
	// ClientCertTrustStorePath is SEG's local trust store: comma-separated PEM
	// paths (spaces allowed) or one PFX path, relative to the install
	// directory. Empty means the console-uploaded chain is the trust.
	ClientCertTrustStorePath string `json:"clientCertTrustStorePath" roles:"edge,crl" help:"trusted client-certificate CAs: comma-separated PEM/CER paths or one password-protected PFX" init:"config/ssl-certs/issuing-ca.pem, config/ssl-certs/root-ca.pem" fill:"The CAs that issue device certificates: PEM files separated by commas (root and intermediate), or one password-protected PFX with its passcode in clientCertTrustStorePasscode (ending .plaintext; encrypted at the next start). Both formats cannot be used together. The chain of trust is in this file, not in the Microsoft Management Console."`
	// ClientCertTrustStorePasscode is the PFX passcode; empty for PEM. A value
	// ending in ".plaintext" is encrypted at the next start.
	ClientCertTrustStorePasscode secret.Secret `json:"clientCertTrustStorePasscode" roles:"edge,crl" help:"the PFX's passcode (….plaintext to have it encrypted); empty for PEM" init:""`
	// ClientCertificateChain is the client certificate chain uploaded in the
	// console (Email Settings > Advanced), as a PEM file path. It is used only
	// when no local trust store is configured.
	ClientCertificateChain string `json:"clientCertificateChain" roles:"edge,crl" help:"the chain uploaded in the console, a PEM path; used only when no local trust store is set"`
	// RequireClientCertificate is the console's Require Client Certificate.
	RequireClientCertificate bool `json:"requireClientCertificate" roles:"edge,crl" help:"Require Client Certificate: no valid certificate, no request" init:"true"`
	// KCD holds the console's KCD Authentication settings.
	KCD KCD `json:"kcd"`
	// CustomGatewaySettings holds SEG's custom gateway settings (dotted keys),
	// parsed into Gateway.
	CustomGatewaySettings map[string]any `json:"customGatewaySettings"`
	// Segmesh holds what SEG has no word for: listeners, certificates,
	// upstreams, peers and telemetry.
	Segmesh Segmesh `json:"segmesh"`

	// Gateway is CustomGatewaySettings, typed, with defaults. Not read from JSON.
	Gateway Gateway `json:"-"`
	// Path is the file the configuration was read from. Not read from JSON.
	Path string `json:"-"`
	// BaseDir is the install directory relative paths are resolved against:
	// the directory holding config.json unless segmesh.installDir says otherwise.
	BaseDir string `json:"-"`

	// set holds the JSON paths config.json wrote (see IsSet).
	set map[string]bool
	// withheld holds the JSON paths of secrets config.json sets but this
	// process did not open, because none of its roles uses them (see
	// Withheld).
	withheld map[string]bool
}

// KCD is the console's KCD Authentication section.
type KCD struct {
	// Enabled turns KCD on. With it off, certificate mapping is ignored and
	// requests carry no Kerberos ticket.
	Enabled bool `json:"enabled" roles:"all" help:"KCD Authentication; with it on every request needs a certificate" init:"true"`
	// TargetSPN is the Exchange service in HTTP/{exchangeName} form. Several
	// SPNs may be given comma-separated; the first is the default.
	TargetSPN string `json:"targetSPN" roles:"edge,ticket" help:"HTTP/{exchangeName}; several comma-separated, the first is the default" init:"HTTP/{{.Exchange}}"`
	// ServiceAccountUserName is the KCD service account (for example svc_seg),
	// never a computer account.
	ServiceAccountUserName string `json:"serviceAccountUserName" roles:"ticket" help:"the KCD service account (not a computer account)" init:"{{.Service}}"`
	// ServiceAccountPassword is its password; ".plaintext" values are encrypted
	// at the next start.
	ServiceAccountPassword secret.Secret `json:"serviceAccountPassword" roles:"ticket,identity" help:"its password (….plaintext to have it encrypted)" init:"CHANGE-ME.plaintext" fill:"The KCD service account's password followed by .plaintext; segmesh run encrypts it and rewrites the file."`
	// Domains are the domain / domain controller pairs; the first domain is the
	// primary (the service account's realm). A domain may be listed more than
	// once with different DCs, which are then tried in order.
	Domains []DomainPair `json:"domains"`
}

// DomainPair is one console "Add Domain" entry.
type DomainPair struct {
	// Domain is the Kerberos realm, upper case (DOMAIN-NAME.COM).
	Domain string `json:"domain" roles:"identity,ticket" help:"a domain (realm) in uppercase, for example DOMAIN-NAME.COM, added in pairs with its DC; the first is the service account's, and every domain must trust it" init:"{{.Domain}}"`
	// DomainController is the DC's FQDN (DC.DOMAIN-NAME.COM), optionally with
	// ":port" (default 88). Empty means the domain's KDCs are found in DNS
	// (_kerberos._tcp.DOMAIN SRV records).
	DomainController string `json:"domainController" roles:"ticket" help:"its DC as an FQDN, optional :port; empty: found by DNS SRV" init:"{{.DC}}"`
}

// Segmesh holds segmesh's own settings.
type Segmesh struct {
	// InstallDir overrides the directory relative paths are resolved against.
	// Empty means the directory of config.json.
	InstallDir string `json:"installDir" roles:"all" help:"base for relative paths"`
	// Edge is the device-facing listener and the Exchange upstream.
	Edge Edge `json:"edge"`
	// Admin is the admin listener: health, readiness, metrics, status page.
	Admin Admin `json:"admin"`
	// GRPC is the listener other roles call in split mode.
	GRPC GRPC `json:"grpc"`
	// Peers are the addresses of roles not run in this process.
	Peers Peers `json:"peers"`
	// Ticket tunes the ticket role.
	Ticket Ticket `json:"ticket"`
	// Identity tunes the identity role.
	Identity Identity `json:"identity"`
	// CRL tunes the crl role.
	CRL CRL `json:"crl"`
	// Telemetry configures logs, traces and metrics.
	Telemetry Telemetry `json:"telemetry"`
	// SecretKeyFile holds the AES key that encrypts ".plaintext" secrets.
	// Empty means "config.key" beside config.json, created 0600 when needed;
	// the SEGMESH_CONFIG_KEY environment variable (base64) overrides both.
	SecretKeyFile string `json:"secretKeyFile" roles:"all" help:"key for .plaintext secrets"`
	// DNSServer is the DNS server (IP or host:port) asked for the SRV
	// records of domains without a domain controller and of the Global
	// Catalogs for a mapping URL without a host; empty means the system's
	// resolver configuration.
	DNSServer string `json:"dnsServer" roles:"ticket,identity" help:"DNS server for the SRV lookups: KDCs of domains without a domain controller, Global Catalogs for a mapping URL without a host (IP or host:port)"`
}

// DrainTimeoutSeconds bounds a graceful stop of `segmesh run` (SIGTERM):
// the edge's grace, the requests still running and the roles' own stops.
const DrainTimeoutSeconds = 30

// MaxDrainGraceSeconds is the longest segmesh.edge.drainGraceSeconds: it
// leaves 10 s of the drain to the requests still running.
const MaxDrainGraceSeconds = DrainTimeoutSeconds - 10

// MaxDrainSpreadMillis is the longest segmesh.edge.drainSpreadMillis: the
// window over which a stopping edge answers its held Pings is part of the
// drain, and the requests still running need the rest of it.
const MaxDrainSpreadMillis = 5000

// Edge configures the device-facing gateway.
type Edge struct {
	// Listen is the TLS listen address for devices.
	Listen string `json:"listen" roles:"edge" help:"device-facing TLS address" init:":443"`
	// ServerCertFile and ServerKeyFile are the edge's PEM certificate and key.
	ServerCertFile string `json:"serverCertFile" roles:"edge" help:"the edge's PEM certificate" init:"config/ssl-certs/seg.pem" fill:"The gateway's TLS certificate and key (PEM, also serverKeyFile) for the name devices use (the Exchange ActiveSync Host of the device profile); or serverPfxFile and serverPfxPasscode."`
	// ServerKeyFile is the PEM private key for ServerCertFile.
	ServerKeyFile string `json:"serverKeyFile" roles:"edge" help:"the edge's PEM key" init:"config/ssl-certs/seg.key"`
	// ServerPFXFile is a PFX holding the edge's certificate and key; an
	// alternative to the PEM pair.
	ServerPFXFile string `json:"serverPfxFile" roles:"edge" help:"or a PFX with certificate and key"`
	// ServerPFXPasscode is ServerPFXFile's passcode.
	ServerPFXPasscode secret.Secret `json:"serverPfxPasscode" roles:"edge" help:"the edge PFX's passcode"`
	// ExchangeURLs are the Exchange upstreams (https:// or http://), tried in order.
	ExchangeURLs []string `json:"exchangeUrls" roles:"edge" help:"Exchange upstream(s)" init:"https://{{.Exchange}}"`
	// ExchangeCAFile is the PEM CA bundle that verifies HTTPS upstreams; empty
	// means the system roots.
	ExchangeCAFile string `json:"exchangeCaFile" roles:"edge" help:"CA bundle verifying HTTPS upstreams"`
	// Paths are the URL path prefixes forwarded to Exchange; anything else is 404.
	Paths []string `json:"paths" roles:"edge" help:"path prefixes forwarded; anything else is 404"`
	// OmitClientCANames leaves the trusted client CAs' names out of the TLS
	// CertificateRequest; false (the default) lists them, as IIS and nginx do,
	// so a device holding several certificates can offer the right one.
	OmitClientCANames bool `json:"omitClientCaNames" roles:"edge" help:"leave the trusted client CAs' names out of the TLS CertificateRequest"`
	// DrainGraceSeconds is how long a stopping edge, already not ready and
	// having answered the held Pings, keeps accepting connections (a
	// balancer or Kubernetes' endpoints take seconds to stop sending it
	// any); 0 closes the listener at once.
	DrainGraceSeconds int `json:"drainGraceSeconds" roles:"edge" help:"how long a stopping edge keeps accepting connections"`
	// DrainSpreadMillis is the window over which a stopping edge, when the
	// grace ends, answers its held Pings, in a random order and equal
	// batches, so that its devices do not all reconnect to the other
	// edges in the same instant; 0 answers them all at once.
	DrainSpreadMillis int `json:"drainSpreadMillis" roles:"edge" help:"the window over which a stopping edge answers its held Pings"`
	// HTTP1Engine is the engine that carries the devices' HTTP/1.1
	// requests (but Pings) to Exchange: "relay" (empty: the default), the
	// edge's own relay (issue 25; docs/benchmarks.md), or "net/http",
	// httputil.ReverseProxy over http.Transport, the engine before it.
	// HTTP/2 stays on net/http.
	HTTP1Engine string `json:"http1Engine" roles:"edge" help:"engine for devices' HTTP/1.1 requests to Exchange: relay (default) or net/http (the engine before it)"`
	// TLSSessionTicketKeyFile names a file of TLS session ticket keys the
	// edges share, so a device resumes its TLS session on any edge (a
	// restart, a drain) instead of a full handshake with its certificate:
	// whole 32-byte random keys, the first encrypts new tickets and all
	// decrypt (rotate by prepending one), mode 0600. Empty: each edge
	// process makes and rotates its own keys, as before.
	TLSSessionTicketKeyFile string `json:"tlsSessionTicketKeyFile" roles:"edge" help:"a file of TLS session ticket keys shared by the edges (32 random bytes each, the first encrypts)"`
	// TLSSessionTicketKeyMaxAgeHours is how old the key file may get (since
	// it was last written, that is since the last rotation) before the edge
	// says so on /readyz, /status and a metric; 0 means 24.
	TLSSessionTicketKeyMaxAgeHours int `json:"tlsSessionTicketKeyMaxAgeHours" roles:"edge" help:"hours after which a session ticket key file not rotated is reported (0: 24)"`
	// RelayMaxConnsPerHost bounds the relay's connections to each Exchange
	// host, idle and in use together, as http.Transport's MaxConnsPerHost;
	// 0 (the default, as MaxConnsPerHost's) means no cap. A request that
	// finds them all in use waits for one (at most 10 s, then 503): a
	// connection is in use while the device streams the request's body, so
	// with a cap one device trickling uploads can hold them all.
	RelayMaxConnsPerHost int `json:"relayMaxConnsPerHost" roles:"edge" help:"the relay's connections to each Exchange server, at most (0: no cap)"`
}

// HTTP1Engines are the values of segmesh.edge.http1Engine; empty means
// the first.
var HTTP1Engines = []string{"relay", "net/http"}

// MaxRelayMaxConnsPerHost is the largest segmesh.edge.relayMaxConnsPerHost:
// connections to one host:port need one local port each, and Linux's
// default ephemeral range (32768-60999) has 28,232.
const MaxRelayMaxConnsPerHost = 16384

// Admin configures the admin listener.
type Admin struct {
	// Listen is the plain-HTTP admin address (/healthz, /readyz, /metrics, /status).
	Listen string `json:"listen" roles:"all" help:"admin HTTP address" init:"127.0.0.1:9090"`
	// Pprof serves Go's profiles under /debug/pprof/ on the admin address.
	Pprof bool `json:"pprof" roles:"all" help:"serve Go's profiles under /debug/pprof/"`
	// TokenFile names a file holding a bearer token every admin path but
	// /healthz and /readyz then requires; empty leaves them open (restrict
	// the port instead).
	TokenFile string `json:"tokenFile" roles:"all" help:"a file holding a bearer token every admin path but /healthz and /readyz requires"`
	// ShowPersonalData shows UPNs, certificate subjects and serials, the
	// LDAP endpoint and base DN on /status and /status.json; false hides them.
	ShowPersonalData bool `json:"showPersonalData" roles:"all" help:"show UPNs, certificate subjects and serials, the LDAP endpoint and base DN on /status"`
}

// GRPC configures the inter-role listener.
type GRPC struct {
	// Listen is the gRPC address other processes reach this one's roles on.
	// Empty in all-in-one mode: co-located roles use an in-process connection.
	Listen string `json:"listen" roles:"all" help:"gRPC address for other segmesh processes (split mode)"`
	// CertFile, KeyFile and CAFile enable mTLS between roles. Empty CAFile
	// means plaintext (only for loopback or inside a mesh that does mTLS).
	CertFile string `json:"certFile" roles:"all" help:"mTLS certificate between roles"`
	// KeyFile is the PEM key for CertFile.
	KeyFile string `json:"keyFile" roles:"all" help:"its key"`
	// CAFile verifies peers' certificates.
	CAFile string `json:"caFile" roles:"all" help:"CA verifying peers"`
	// AllowedPeers lists the peer identities (certificate URI or DNS SANs,
	// or the mesh identity with MeshProvidesMTLS) allowed to call this
	// process's roles: the edges. Empty admits nobody; a listening process
	// needs it.
	AllowedPeers []string `json:"allowedPeers" roles:"all" help:"peer identities allowed to call this process's roles"`
	// MeshProvidesMTLS says a service mesh (Istio with PeerAuthentication
	// STRICT) terminates mTLS in front of Listen, so plaintext gRPC on a
	// non-loopback address is allowed and AllowedPeers is checked against the
	// caller identity the sidecar passes in x-forwarded-client-cert. False
	// means plaintext is allowed on loopback only.
	MeshProvidesMTLS bool `json:"meshProvidesMtls" roles:"all" help:"a mesh terminates mTLS in front of segmesh.grpc.listen"`
}

// Peers are the addresses of remote roles (host:port or dns:///name:port).
type Peers struct {
	// Identity is the identity role's address.
	Identity string `json:"identity" roles:"edge" help:"address of the identity role run elsewhere"`
	// Ticket is the ticket role's address (a headless DNS name for ring hashing).
	Ticket string `json:"ticket" roles:"edge" help:"address of the ticket role run elsewhere"`
	// CRL is the crl role's address.
	CRL string `json:"crl" roles:"edge" help:"address of the crl role run elsewhere"`
}

// Ticket tunes ticket issuance.
type Ticket struct {
	// CacheSize bounds the (user, SPN) ticket cache; 0 means the default.
	CacheSize int `json:"cacheSize" roles:"ticket" help:"(user, SPN) ticket cache bound"`
	// KDCTimeoutSeconds bounds one KDC exchange; 0 means the default.
	KDCTimeoutSeconds int `json:"kdcTimeoutSeconds" roles:"ticket" help:"one attempt at one KDC"`
	// MaxConcurrentKDCExchanges bounds concurrent exchanges per realm; 0 means the default.
	MaxConcurrentKDCExchanges int `json:"maxConcurrentKdcExchanges" roles:"ticket" help:"concurrent KDC exchanges per realm"`
	// ArmorAccountUserName is a computer account (the gateway host's, for
	// example SEGGW$) whose TGT armours the service account's AS exchange
	// (FAST, RFC 6113), which an authentication policy restricting where
	// the service account may authenticate from (AllowedToAuthenticateFrom)
	// requires. Empty: no armour.
	ArmorAccountUserName string `json:"armorAccountUserName" roles:"ticket" help:"computer account whose TGT armours the service account's AS exchange (FAST); empty: none"`
	// ArmorAccountPassword is its password; ".plaintext" values are
	// encrypted at the next start.
	ArmorAccountPassword secret.Secret `json:"armorAccountPassword" roles:"ticket" help:"its password (….plaintext to have it encrypted)"`
	// AllowRC4 offers RC4-HMAC, last, after AES256 and AES128, for a legacy
	// domain whose service account has no AES keys. Off (the default), the
	// service account never pre-authenticates under its NT hash, which a
	// rogue KDC offering only RC4 would otherwise obtain to crack offline.
	AllowRC4 bool `json:"allowRc4" roles:"ticket" help:"also offer RC4 (last), for a legacy service account without AES keys; off: AES only"`
}

// Identity tunes certificate-to-user mapping.
type Identity struct {
	// UPNSuffixRealms maps UPN suffixes that differ from a realm (contoso.com)
	// to a configured realm (CORP.CONTOSO.COM).
	UPNSuffixRealms map[string]string `json:"upnSuffixRealms" roles:"identity" help:"UPN suffix to realm, for suffixes that differ from the realm"`
	// LDAPCAFile verifies ldaps:// and StartTLS directory certificates; empty
	// means the system roots.
	LDAPCAFile string `json:"ldapCaFile" roles:"identity" help:"CA for ldaps:// and StartTLS"`
	// CacheTTLSeconds is how long a mapping is cached; 0 means the default.
	CacheTTLSeconds int `json:"cacheTtlSeconds" roles:"identity,edge" help:"certificate to user cache TTL"`
	// NegativeCacheTTLSeconds is how long "no user holds this certificate"
	// is cached; 0 means the default (60 s).
	NegativeCacheTTLSeconds int `json:"negativeCacheTtlSeconds" roles:"identity" help:"how long \"no user holds this certificate\" is cached"`
	// LDAPStartTLS upgrades an ldap:// cert.mapping.ldap.url with StartTLS.
	LDAPStartTLS bool `json:"ldapStartTls" roles:"identity" help:"upgrade an ldap:// mapping URL with StartTLS"`
	// LDAPPoolSize bounds connections to the directory; 0 means the default (4).
	LDAPPoolSize int `json:"ldapPoolSize" roles:"identity" help:"connections to the directory"`
	// StrongMapping accepts a certificate's SAN UPN only when the directory
	// binds the certificate to that user strongly (altSecurityIdentities
	// X509IssuerSerialNumber / SKI / SHA1-PUKEY, or the SID extension; KB5014754).
	StrongMapping bool `json:"strongMapping" roles:"identity" help:"accept a SAN UPN only when the directory binds the certificate strongly (KB5014754)"`
	// FallbackWhenUnavailable uses the certificate's SAN UPN while the
	// directory is unreachable; false refuses, because a certificate mapped
	// to another user than its SAN names (mallory's) would pass as that user.
	FallbackWhenUnavailable bool `json:"fallbackWhenUnavailable" roles:"identity" help:"use the SAN UPN while the directory is down"`
	// LoginIdentity is the identity delegated: certificateUpn (SEG's
	// behaviour), onPremisesUpn or onPremisesSamAccountName of the user the
	// directory finds by the certificate, its SAN UPN or its email.
	LoginIdentity string `json:"loginIdentity" roles:"identity" help:"the identity delegated: certificateUpn, onPremisesUpn or onPremisesSamAccountName (found in the directory by the certificate's UPN or email)"`
}

// CRL tunes revocation checking beyond SEG's keys.
type CRL struct {
	// StateDir keeps the last good CRLs across restarts; empty means
	// "crl-cache" beside config.json.
	StateDir string `json:"stateDir" roles:"crl" help:"last good CRLs, kept across restarts"`
	// FetchIntervalSeconds overrides remote.crl.fetch.interval.in.minutes with
	// a finer interval (tests, labs); 0 means use the minutes.
	FetchIntervalSeconds int `json:"fetchIntervalSeconds" roles:"crl" help:"finer override of the CRL interval"`
	// FailClosedOnStale refuses certificates of an issuer whose CRL is past
	// nextUpdate instead of keeping the last known good list.
	FailClosedOnStale bool `json:"failClosedOnStale" roles:"crl" help:"refuse certificates of an issuer whose CRL is past nextUpdate"`
	// UseCertificateCDPs also fetches the HTTP CDPs named in trusted CA certificates.
	UseCertificateCDPs bool `json:"useCertificateCdps" roles:"crl" help:"also fetch the HTTP CDPs named in trusted CA certificates"`
}

// Telemetry configures observability.
type Telemetry struct {
	// LogLevel is debug, info, warn or error.
	LogLevel string `json:"logLevel" roles:"all" help:"slog level"`
	// LogFormat is text or json.
	LogFormat string `json:"logFormat" roles:"all" help:"text or json"`
	// OTLPEndpoint sends traces over OTLP/gRPC (host:port); empty means no export.
	OTLPEndpoint string `json:"otlpEndpoint" roles:"all" help:"OTLP/gRPC trace export (host:port)"`
	// OTLPInsecure sends OTLP without TLS (a collector on loopback or in the pod).
	OTLPInsecure bool `json:"otlpInsecure" roles:"all" help:"send OTLP without TLS"`
}

// Gateway is the custom gateway settings, typed.
type Gateway struct {
	// CertMappingEnabled is cert.mapping.enabled (considered false with KCD off).
	CertMappingEnabled bool `key:"cert.mapping.enabled" roles:"identity" help:"map certificates to users by LDAP userCertificate; considered false with KCD off" init:"false"`
	// CertMappingLDAPURL is cert.mapping.ldap.url.
	CertMappingLDAPURL string `key:"cert.mapping.ldap.url" roles:"identity" help:"ldap[s]://host:port[/baseDN]; the Global Catalog port 3269 with TLS performs best" init:"ldaps://{{.DC}}:3269"`
	// CertMappingLDAPUser is cert.mapping.ldap.user, a DN.
	CertMappingLDAPUser string `key:"cert.mapping.ldap.user" roles:"identity" help:"the KCD service account's DN, bound with its password" init:"CN={{.Service}},CN=Users,{{.BaseDN}}"`
	// CertMappingLDAPBaseDN is cert.mapping.ldap.basedn; empty means the URL
	// path's DN, else the rootDSE.
	CertMappingLDAPBaseDN string `key:"cert.mapping.ldap.basedn" roles:"identity" help:"search base when the URL has none" init:""`
	// RevocationEnabled is enable.cert.revocation.validation (honoured only
	// with KCD or Require Client Certificate on).
	RevocationEnabled bool `key:"enable.cert.revocation.validation" roles:"crl,edge" help:"check CRLs; honoured only with KCD or Require Client Certificate on" init:"true"`
	// CRLFetchIntervalMinutes is remote.crl.fetch.interval.in.minutes.
	CRLFetchIntervalMinutes int `key:"remote.crl.fetch.interval.in.minutes" roles:"crl" help:"CRL refresh interval" init:"1440"`
	// CRLURIs is remote.crl.distribution.http.uris, split at commas.
	CRLURIs []string `key:"remote.crl.distribution.http.uris" roles:"crl" help:"comma-separated HTTP CDP URLs" init:"http://pki.{{.DomainLower}}/CertEnroll/issuing-ca.crl" fill:"The HTTP URLs of your CAs' CRLs, comma separated. Microsoft CAs publish over LDAP by default; SEG needs HTTP (install the AD CS role service Certification Authority Web Enrollment)."`
	// FailHardOnCRLDownload is fail.hard.on.crl.download.failure.during.server.startup.
	FailHardOnCRLDownload bool `key:"fail.hard.on.crl.download.failure.during.server.startup" roles:"crl" help:"refuse to start when a CRL cannot be fetched at start" init:"true"`
}

// Default returns the configuration an empty config.json means.
func Default() Config {
	return Config{
		Gateway: Gateway{
			CRLFetchIntervalMinutes: 1440,
			FailHardOnCRLDownload:   true,
		},
		Segmesh: Segmesh{
			Edge: Edge{
				Listen:      "127.0.0.1:8443",
				Paths:       []string{"/Microsoft-Server-ActiveSync", "/EWS/", "/autodiscover/", "/Autodiscover/"},
				HTTP1Engine: HTTP1Engines[0],
			},
			Admin: Admin{Listen: "127.0.0.1:9090"},
			Ticket: Ticket{
				CacheSize:                 100000,
				KDCTimeoutSeconds:         5,
				MaxConcurrentKDCExchanges: 32,
			},
			Identity:  Identity{CacheTTLSeconds: 900, NegativeCacheTTLSeconds: 60, LDAPPoolSize: 4, LoginIdentity: "certificateUpn"},
			CRL:       CRL{StateDir: "crl-cache"},
			Telemetry: Telemetry{LogLevel: "info", LogFormat: "text"},
		},
	}
}
