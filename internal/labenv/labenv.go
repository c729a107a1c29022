//go:build lab

package labenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// upTimeout bounds `lab.sh up`, which may install packages on a fresh machine.
const upTimeout = 15 * time.Minute

// UserCert names the files of one device certificate.
type UserCert struct {
	// Cert is the certificate (PEM).
	Cert string
	// Key is its private key (PKCS#8 PEM).
	Key string
	// Chain is the certificate followed by its intermediates (PEM).
	Chain string
	// PFX holds key, certificate and intermediates, with Env.PFXPassword.
	PFX string
}

// Env is the lab as `lab.sh env` describes it. Raw holds every key as printed.
type Env struct {
	// Script is the path of deploy/lab/lab.sh.
	Script string
	// Dir is the lab's state directory ($SEGMESH_LAB_DIR).
	Dir string
	// Realm is the Kerberos realm, LAB.TEST.
	Realm string
	// SambaSeries is the Samba release series the DC runs, "4.22" (the
	// default, bookworm-backports) or "4.17" (Debian 12); SambaVersion is the
	// Debian package version.
	SambaSeries, SambaVersion string
	// BaseDN is the domain naming context, DC=lab,DC=test.
	BaseDN string
	// DCHost is the domain controller's FQDN (127.0.0.2).
	DCHost string
	// KDC is the KDC forwarder's host:port (stopped by Fault "kdc").
	KDC string
	// KDCHost is the forwarder's name, for a DomainController setting.
	KDCHost string
	// KDCDirect is the KDC itself, host:port, never faulted.
	KDCDirect string
	// KRB5Config is a krb5.conf for MIT tools (KRB5_CONFIG); it names the
	// KDC directly.
	KRB5Config string
	// LDAPURL, LDAPSURL, GCURL and GCSURL reach the DC through the LDAP
	// forwarder (stopped by Fault "ldap").
	LDAPURL, LDAPSURL, GCURL, GCSURL string
	// LDAPDirectURL reaches the DC itself.
	LDAPDirectURL string
	// LDAPCA verifies the DC's certificate (LDAPS, GC over TLS).
	LDAPCA string
	// ServerCA issued every lab server certificate (DC, edge, Exchange).
	ServerCA string
	// CAPEM is the device trust store as PEM files: the root, the
	// intermediate and the second trusted CA.
	CAPEM []string
	// UntrustedCA is a device CA that is in no trust store.
	UntrustedCA string
	// TrustPFX is the same trust store as an openssl 3 PFX (-nokeys).
	TrustPFX string
	// TrustPFXPassword is TrustPFX's password.
	TrustPFXPassword string
	// PFXPassword protects every device and server PFX.
	PFXPassword string
	// EdgeAddr is the loopback address the edge may listen on.
	EdgeAddr string
	// ServerCert, ServerKey and ServerPFX are the edge's certificate
	// (seg.lab.test, localhost, 127.0.0.1).
	ServerCert, ServerKey, ServerPFX string
	// ExchangeURL and ExchangeHTTPSURL are the Exchange stand-in.
	ExchangeURL, ExchangeHTTPSURL string
	// ExchangeCA verifies ExchangeHTTPSURL.
	ExchangeCA string
	// ExchangeKeytab holds HTTP/exchange.lab.test's AES keys.
	ExchangeKeytab string
	// TargetSPN is the SPN svc_seg may delegate to; OtherSPN exists but is
	// not delegable to. SecondSPN is another SPN of the Exchange stand-in,
	// delegable like TargetSPN (empty on a lab from before it).
	TargetSPN, OtherSPN, SecondSPN string
	// SvcUser, SvcUPN, SvcSPN and SvcDN name the KCD service account.
	SvcUser, SvcUPN, SvcSPN, SvcDN string
	// SvcPasswordFile holds svc_seg's password (no newline).
	SvcPasswordFile string
	// UserPasswordFile holds the named users' password (no newline).
	UserPasswordFile string
	// CRLURLs are the trusted CAs' CRL URLs (root, intermediate, second).
	CRLURLs []string
	// CDPAddr is the CRL distribution point's host:port.
	CDPAddr string
	// UsersDir holds a directory per user (cert.pem, key.pem, chain.pem,
	// cert.pfx), including the generated user0001....
	UsersDir string
	// GeneratedUsers is how many userNNNN accounts exist.
	GeneratedUsers int
	// SegmeshConfig is a segmesh config.json aimed at the lab.
	SegmeshConfig string
	// SOGoURL is SOGo ActiveSync behind Apache Negotiate (https), set only
	// when SOGo runs (UpSOGo). It accepts tickets for TargetSPN.
	SOGoURL string
	// SOGoAddr is SOGoURL's host:port (127.0.0.7:443).
	SOGoAddr string
	// SOGoCA verifies SOGoURL (its certificate also names the Exchange host).
	SOGoCA string
	// EASClient is deploy/lab/eas-client.sh.
	EASClient string
	// Raw is every KEY=VALUE line of `lab.sh env`.
	Raw map[string]string
}

// upOnce and upSOGoOnce bring the lab up once per test binary. They are the
// package's only state: `lab.sh up` costs about a second even when nothing is
// to do, and test binaries call Up from many tests.
var (
	upOnce     = sync.OnceValues(func() (*Env, error) { return up() })
	upSOGoOnce = sync.OnceValues(func() (*Env, error) { return up("--with-sogo") })
)

func up(args ...string) (*Env, error) {
	script, err := findScript()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, script, append([]string{"up"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("lab.sh up: %w\n%s", err, out.Bytes())
	}
	return load(ctx, script)
}

// Up brings the lab up (once per test binary) and returns its description.
// It fails the test when the lab cannot be brought up.
func Up(t testing.TB) *Env {
	t.Helper()
	e, err := upOnce()
	if err != nil {
		t.Fatalf("labenv: %v", err)
	}
	return e
}

// UpSOGo is Up with SOGo ActiveSync as well (`lab.sh up --with-sogo`):
// Env.SOGoURL is then set.
func UpSOGo(t testing.TB) *Env {
	t.Helper()
	e, err := upSOGoOnce()
	if err != nil {
		t.Fatalf("labenv: %v", err)
	}
	if e.SOGoURL == "" {
		t.Fatal("labenv: lab.sh up --with-sogo left LAB_SOGO_URL unset")
	}
	return e
}

// Load describes a running lab without bringing it up.
func Load(t testing.TB) *Env {
	t.Helper()
	script, err := findScript()
	if err != nil {
		t.Fatalf("labenv: %v", err)
	}
	e, err := load(context.Background(), script)
	if err != nil {
		t.Fatalf("labenv: %v", err)
	}
	return e
}

func load(ctx context.Context, script string) (*Env, error) {
	out, err := exec.CommandContext(ctx, script, "env").Output()
	if err != nil {
		return nil, fmt.Errorf("lab.sh env: %w", err)
	}
	raw, err := ParseEnv(out)
	if err != nil {
		return nil, err
	}
	return fromRaw(script, raw)
}

func fromRaw(script string, raw map[string]string) (*Env, error) {
	var missing []string
	get := func(k string) string {
		v, ok := raw[k]
		if !ok {
			missing = append(missing, k)
		}
		return v
	}
	list := func(k string) []string {
		var out []string
		for _, s := range strings.Split(get(k), ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	e := &Env{
		Script: script, Raw: raw,
		Dir: get("LAB_DIR"), Realm: get("LAB_REALM"), BaseDN: get("LAB_BASE_DN"),
		SambaSeries: raw["LAB_SAMBA_SERIES"], SambaVersion: raw["LAB_SAMBA_VERSION"],
		DCHost: get("LAB_DC_HOST"), KDC: get("LAB_KDC"), KDCHost: get("LAB_KDC_HOST"),
		KDCDirect: get("LAB_KDC_DIRECT"), KRB5Config: get("LAB_KRB5_CONFIG"),
		LDAPURL: get("LAB_LDAP_URL"), LDAPSURL: get("LAB_LDAPS_URL"),
		GCURL: get("LAB_GC_URL"), GCSURL: get("LAB_GCS_URL"),
		LDAPDirectURL: get("LAB_LDAP_DIRECT_URL"), LDAPCA: get("LAB_LDAP_CA"),
		ServerCA: get("LAB_SERVER_CA"), CAPEM: list("LAB_CA_PEM"),
		UntrustedCA: get("LAB_CA_UNTRUSTED"), TrustPFX: get("LAB_TRUST_PFX"),
		TrustPFXPassword: get("LAB_TRUST_PFX_PASSWORD"), PFXPassword: get("LAB_PFX_PASSWORD"),
		EdgeAddr: get("LAB_EDGE_ADDR"), ServerCert: get("LAB_SERVER_CERT"),
		ServerKey: get("LAB_SERVER_KEY"), ServerPFX: get("LAB_SERVER_PFX"),
		ExchangeURL: get("LAB_EXCHANGE_URL"), ExchangeHTTPSURL: get("LAB_EXCHANGE_HTTPS_URL"),
		ExchangeCA: get("LAB_EXCHANGE_CA"), ExchangeKeytab: get("LAB_EXCHANGE_KEYTAB"),
		TargetSPN: get("LAB_TARGET_SPN"), OtherSPN: get("LAB_OTHER_SPN"), SecondSPN: raw["LAB_SECOND_SPN"],
		SvcUser: get("LAB_SVC_USER"), SvcUPN: get("LAB_SVC_UPN"), SvcSPN: get("LAB_SVC_SPN"),
		SvcDN: get("LAB_SVC_DN"), SvcPasswordFile: get("LAB_SVC_PASSWORD_FILE"),
		UserPasswordFile: get("LAB_USER_PASSWORD_FILE"), CRLURLs: list("LAB_CRL_URLS"),
		CDPAddr: get("LAB_CDP_ADDR"), UsersDir: get("LAB_USERS_DIR"),
		SegmeshConfig: get("LAB_SEGMESH_CONFIG"),
		SOGoURL:       raw["LAB_SOGO_URL"], SOGoAddr: raw["LAB_SOGO_ADDR"], SOGoCA: raw["LAB_SOGO_CA"],
		EASClient: filepath.Join(filepath.Dir(script), "eas-client.sh"),
	}
	if e.SambaSeries == "" {
		e.SambaSeries = "4.17" // a lab.sh from before --samba ran 4.17 only
	}
	n, err := strconv.Atoi(get("LAB_GENERATED_USERS"))
	if err != nil && len(missing) == 0 {
		return nil, fmt.Errorf("lab.sh env: LAB_GENERATED_USERS=%q: %w", raw["LAB_GENERATED_USERS"], err)
	}
	e.GeneratedUsers = n
	if len(missing) > 0 {
		return nil, fmt.Errorf("lab.sh env: missing %s", strings.Join(missing, ", "))
	}
	return e, nil
}

// User returns the device certificate files of a user ("alice", "user0001")
// or of a negative case ("alice-expired", "alice-notyet", "alice-wrongeku",
// "alice-revoked", "alice-ca2", "alice-ca3").
func (e *Env) User(name string) UserCert {
	d := filepath.Join(e.UsersDir, name)
	return UserCert{
		Cert: filepath.Join(d, "cert.pem"), Key: filepath.Join(d, "key.pem"),
		Chain: filepath.Join(d, "chain.pem"), PFX: filepath.Join(d, "cert.pfx"),
	}
}

// SvcPassword returns svc_seg's password.
func (e *Env) SvcPassword(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(e.SvcPasswordFile)
	if err != nil {
		t.Fatalf("labenv: %v", err)
	}
	return strings.TrimRight(string(b), "\r\n")
}

// SetSvcPassword sets svc_seg's password in the domain to pw (`lab.sh
// svc-password`, a rotation as an administrator does it) and registers a
// cleanup that puts the usual one back.
func (e *Env) SetSvcPassword(t testing.TB, pw string) {
	t.Helper()
	e.Run(t, "svc-password", pw)
	t.Cleanup(func() { e.Run(t, "svc-password", "--reset") })
}

// Run runs lab.sh with args and returns its standard output.
func (e *Env) Run(t testing.TB, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(e.Script, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lab.sh %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

// Fault turns a fault switch on or off: "kdc" (the KDC forwarder stops;
// LDAP stays up), "ldap" (the LDAP forwarder stops; the KDC stays up),
// "cdp" (the CRL server stops) or "exchange" (the stand-in stops). Turning
// one on registers a cleanup that turns it off again.
func (e *Env) Fault(t testing.TB, name string, on bool) {
	t.Helper()
	if !on {
		e.Run(t, "fault", name, "off")
		return
	}
	e.Run(t, "fault", name, "on")
	t.Cleanup(func() { e.Run(t, "fault", name, "off") })
}

// Hang freezes the "kdc" or "ldap" forwarder until the test ends: connections
// are accepted and never answered, UDP requests are never answered (for
// timeout tests; Fault makes them refused instead).
func (e *Env) Hang(t testing.TB, name string) {
	t.Helper()
	e.Run(t, "fault", name, "hang")
	t.Cleanup(func() { e.Run(t, "fault", name, "off") })
}

// CDPGarbage makes the CRL distribution point serve random bytes in place of
// every CRL until the test ends.
func (e *Env) CDPGarbage(t testing.TB) {
	t.Helper()
	e.Run(t, "fault", "cdp", "garbage")
	t.Cleanup(func() { e.Run(t, "fault", "cdp", "off") })
}

// Revoke revokes the user's device certificate, re-issues its CA's CRL and
// returns the revoked serial number in hexadecimal. It cannot be undone.
func (e *Env) Revoke(t testing.TB, user string) string {
	t.Helper()
	kv, err := ParseEnv([]byte(e.Run(t, "revoke", user)))
	if err != nil {
		t.Fatalf("labenv: %v", err)
	}
	if kv["SERIAL"] == "" {
		t.Fatalf("labenv: lab.sh revoke %s printed no serial", user)
	}
	return kv["SERIAL"]
}

// KRB5Env returns the environment for MIT Kerberos tools using the lab's
// krb5.conf and the given credential cache file.
func (e *Env) KRB5Env(ccache string) []string {
	return append(os.Environ(), "KRB5_CONFIG="+e.KRB5Config, "KRB5CCNAME=FILE:"+ccache)
}

// AtLeast reports whether the lab's Samba series is series or newer
// ("4.19" on a 4.22 lab: true).
func (e *Env) AtLeast(series string) bool {
	return seriesLess(series, e.SambaSeries) || series == e.SambaSeries
}

// NeedSamba skips the test unless the lab runs Samba series or newer; the
// skip message names the series and how to switch.
func (e *Env) NeedSamba(t testing.TB, series, why string) {
	t.Helper()
	if !e.AtLeast(series) {
		t.Skipf("needs Samba %s or newer (%s); the lab runs %s: lab.sh up --samba 4.22", series, why, e.SambaSeries)
	}
}

func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repo root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			s := filepath.Join(dir, "deploy", "lab", "lab.sh")
			if _, err := os.Stat(s); err != nil {
				return "", fmt.Errorf("find lab.sh: %w", err)
			}
			return s, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repo root: no go.mod above the working directory")
		}
		dir = parent
	}
}
