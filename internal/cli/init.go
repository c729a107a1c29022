package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/template"

	"github.com/segmesh/segmesh/pkg/config"
)

// siteValues are what `config init` asks for; the rest of the file follows.
type siteValues struct {
	Domain, DomainLower, DC, Exchange, Service, BaseDN string
}

// initJSON is the starting config.json. JSON has no comments: every key is
// explained in the config.json.md written beside it.
const initJSON = `{
  "clientCertTrustStorePath": "config/ssl-certs/issuing-ca.pem, config/ssl-certs/root-ca.pem",
  "clientCertTrustStorePasscode": "",
  "requireClientCertificate": true,
  "kcd": {
    "enabled": true,
    "targetSPN": "HTTP/{{.Exchange}}",
    "serviceAccountUserName": "{{.Service}}",
    "serviceAccountPassword": "CHANGE-ME.plaintext",
    "domains": [
      {"domain": "{{.Domain}}", "domainController": "{{.DC}}"}
    ]
  },
  "customGatewaySettings": {
    "cert.mapping.enabled": "false",
    "cert.mapping.ldap.url": "ldaps://{{.DC}}:3269",
    "cert.mapping.ldap.user": "CN={{.Service}},CN=Users,{{.BaseDN}}",
    "cert.mapping.ldap.basedn": "",
    "enable.cert.revocation.validation": "true",
    "remote.crl.distribution.http.uris": "http://pki.{{.DomainLower}}/CertEnroll/issuing-ca.crl",
    "remote.crl.fetch.interval.in.minutes": "1440",
    "fail.hard.on.crl.download.failure.during.server.startup": "true"
  },
  "segmesh": {
    "edge": {
      "listen": ":443",
      "serverCertFile": "config/ssl-certs/seg.pem",
      "serverKeyFile": "config/ssl-certs/seg.key",
      "exchangeUrls": ["https://{{.Exchange}}"]
    },
    "admin": {"listen": "127.0.0.1:9090"}
  }
}
`

// initMD explains every key of initJSON, in SEG's words.
const initMD = "# {{.File}}: what to fill in\n\n" +
	"Written by `segmesh config init` for the domain {{.Domain}}. JSON has no comments, so they are here.\n" +
	"Check the file with `segmesh config check {{.File}}`, then one user with\n" +
	"`segmesh diagnose --config {{.File}} --cert user.pem`.\n\n" +
	"## Must fill in\n\n" +
	"| key | what |\n| --- | --- |\n" +
	"| `clientCertTrustStorePath` | The CAs that issue device certificates: PEM files separated by commas (root and intermediate), or one password-protected PFX with its passcode in `clientCertTrustStorePasscode` (ending `.plaintext`; encrypted at the next start). Both formats cannot be used together. The chain of trust is in this file, not in the Microsoft Management Console. |\n" +
	"| `kcd.serviceAccountPassword` | The KCD service account's password followed by `.plaintext`; `segmesh run` encrypts it and rewrites the file. |\n" +
	"| `remote.crl.distribution.http.uris` | The HTTP URLs of your CAs' CRLs, comma separated. Microsoft CAs publish over LDAP by default; SEG needs HTTP (install the AD CS role service Certification Authority Web Enrollment). |\n" +
	"| `segmesh.edge.serverCertFile`, `serverKeyFile` | The gateway's TLS certificate and key (PEM) for the name devices use (the Exchange ActiveSync Host of the device profile); or `serverPfxFile` + `serverPfxPasscode`. |\n\n" +
	"## Check\n\n" +
	"| key | value written | rule |\n| --- | --- | --- |\n" +
	"| `kcd.targetSPN` | `HTTP/{{.Exchange}}` | HTTP/{exchangeName}: the SPN registered on the Exchange (or load balancer) account. |\n" +
	"| `kcd.serviceAccountUserName` | `{{.Service}}` | A service account (a user with an SPN, trusted for delegation to the target SPN with any authentication protocol). Using the computer account for Kerberos and impersonation is not supported. |\n" +
	"| `kcd.domains` | `{{.Domain}}` / `{{.DC}}` | Domain in uppercase, domain controller as FQDN, added in pairs; all domains must have trust with the primary (first) domain. |\n" +
	"| `requireClientCertificate` | `true` | Require Client Certificate (in SEG V2 an advanced setting, not IIS). With KCD on every request needs a certificate anyway. |\n" +
	"| `cert.mapping.enabled` | `false` | Turn on when certificates carry no UPN, or one that differs from AD: segmesh then finds the user whose `userCertificate` holds the certificate. Publish the certificate to the user object, index `userCertificate` and replicate it to the Global Catalog. Ignored with KCD off. |\n" +
	"| `cert.mapping.ldap.url` | `ldaps://{{.DC}}:3269` | protocol://host:port[/baseDN]; the Global Catalog port 3269 with TLS performs best. |\n" +
	"| `cert.mapping.ldap.user` | `CN={{.Service}},CN=Users,{{.BaseDN}}` | The service account's distinguished name; the bind uses `kcd.serviceAccountPassword`. |\n" +
	"| `cert.mapping.ldap.basedn` | empty | Empty means the URL's DN, else the rootDSE. |\n" +
	"| `enable.cert.revocation.validation` | `true` | Used only when KCD or Require Client Certificate is on. |\n" +
	"| `remote.crl.fetch.interval.in.minutes` | `1440` | One day (SEG's default). |\n" +
	"| `fail.hard.on.crl.download.failure.during.server.startup` | `true` | Refuse to start without the CRLs. |\n" +
	"| `segmesh.edge.listen` | `:443` | Where devices connect. |\n" +
	"| `segmesh.edge.exchangeUrls` | `https://{{.Exchange}}` | Exchange (or its load balancer); add `exchangeCaFile` when its certificate is from an internal CA. |\n" +
	"| `segmesh.admin.listen` | `127.0.0.1:9090` | /healthz, /readyz, /metrics, /status, /status.json (docs/operations.md). |\n\n" +
	"## If users see \"Client not found in kerberos database\"\n\n" +
	"The UPN in their certificate does not match AD. Either set the UPN as the Kerberos Principal Name of the user:\n\n" +
	"    Set-ADUser -Identity $ADUsername -Add @{'altSecurityIdentities'=\"Kerberos:USERNAME@DOMAIN.NAME\"}\n\n" +
	"or turn certificate mapping on (above).\n"

// configInit writes a starting config.json for a new site and its
// explanation beside it. It refuses to overwrite either file, and checks
// the result with the loader `run` uses before writing anything.
func configInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("config init", "config init [--domain CORP.EXAMPLE] [--dc dc1.corp.example] [--exchange mail.corp.example] [--service-account svc_seg] [config.json]",
		"Writes a starting config.json for a new site and config.json.md explaining each key. Refuses to overwrite either file.", stderr)
	domain := fs.String("domain", "CORP.EXAMPLE", "the primary domain (Kerberos realm), in uppercase")
	dc := fs.String("dc", "", "a domain controller's FQDN (default dc1.<domain>)")
	exchange := fs.String("exchange", "", "Exchange's host name, for the target SPN and URL (default mail.<domain>)")
	svc := fs.String("service-account", "svc_seg", "the KCD service account's name (not a computer account)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	path, err := fileArg("config init", pos)
	if err != nil {
		return err
	}
	lower := strings.ToLower(*domain)
	v := siteValues{Domain: *domain, DomainLower: lower, DC: *dc, Exchange: *exchange, Service: *svc, BaseDN: baseDN(lower)}
	if v.DC == "" {
		v.DC = "dc1." + lower
	}
	if v.Exchange == "" {
		v.Exchange = "mail." + lower
	}
	var js, md bytes.Buffer
	if err := template.Must(template.New("json").Parse(initJSON)).Execute(&js, v); err != nil {
		return fmt.Errorf("config init: %w", err)
	}
	if !json.Valid(js.Bytes()) {
		return usageError{"config init: a flag value breaks the JSON (quotes or backslashes are not allowed)"}
	}
	// The written file must load as `run` loads it; only the placeholders
	// (the password, the files to provide) are left to the operator.
	if _, rep, err := config.Parse(path, js.Bytes()); err != nil {
		for _, p := range rep.Errors() {
			_, _ = fmt.Fprintf(stderr, "  %s\n", p)
		}
		return usageError{"config init: the flags give an invalid configuration (see above)"}
	}
	if err := template.Must(template.New("md").Parse(initMD)).Execute(&md, struct {
		siteValues
		File string
	}{v, path}); err != nil {
		return fmt.Errorf("config init: %w", err)
	}
	mdPath := path + ".md"
	for _, p := range []string{path, mdPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("config init: %s exists; not overwriting it (remove it or name another file)", p)
		}
	}
	if err := writeNew(path, js.Bytes(), 0o600); err != nil {
		return err
	}
	if err := writeNew(mdPath, md.Bytes(), 0o644); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(stdout, "wrote %s and %s (what each key means and what to fill in)\n", path, mdPath)
	_, _ = fmt.Fprintf(stdout, "next: fill in the password, the trust store, the CRL URLs and the server certificate, then\n  segmesh config check %s\n", path)
	return nil
}

// writeNew creates path with data, failing if it exists.
func writeNew(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("config init: %s exists; not overwriting it", path)
		}
		return fmt.Errorf("config init: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("config init: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("config init: write %s: %w", path, err)
	}
	return nil
}

// baseDN turns corp.example into DC=corp,DC=example.
func baseDN(domain string) string {
	parts := strings.Split(domain, ".")
	for i, p := range parts {
		parts[i] = "DC=" + p
	}
	return strings.Join(parts, ",")
}
