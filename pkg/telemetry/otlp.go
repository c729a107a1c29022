package telemetry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/problem"
	"github.com/segmesh/segmesh/pkg/safefile"
)

// The trace export's settings, as config.json names them.
const (
	// KeyOTLPEndpoint is the collector's host:port (Options.OTLPEndpoint).
	KeyOTLPEndpoint = "segmesh.telemetry.otlpEndpoint"
	// KeyOTLPInsecure sends traces without TLS (Options.OTLPInsecure).
	KeyOTLPInsecure = "segmesh.telemetry.otlpInsecure"
)

// The OTEL_EXPORTER_OTLP_* variables the trace exporter reads before
// segmesh's options (OTLP's specification) and CheckOTLP examines, by
// their suffix: each is read as the general variable and the traces' own
// (envNames), which wins.
const (
	envEndpoint   = "ENDPOINT"
	envInsecure   = "INSECURE"
	envCA         = "CERTIFICATE"
	envClientCert = "CLIENT_CERTIFICATE"
	envClientKey  = "CLIENT_KEY"
	envHeaders    = "HEADERS"
)

// envNames returns the general variable and the traces' own for suffix.
func envNames(suffix string) [2]string {
	return [2]string{"OTEL_EXPORTER_OTLP_" + suffix, "OTEL_EXPORTER_OTLP_TRACES_" + suffix}
}

// OTLPEnv returns the names of the OTEL_EXPORTER_OTLP_* variables CheckOTLP
// examines.
func OTLPEnv() []string {
	var out []string
	for _, suffix := range []string{envEndpoint, envInsecure, envCA, envClientCert, envClientKey, envHeaders} {
		n := envNames(suffix)
		out = append(out, n[:]...)
	}
	return out
}

// endpointFix is what to write instead of an unusable otlpEndpoint.
const endpointFix = "write the collector's host:port without a scheme, for example otel-collector:4317 (OTLP/gRPC), and set " +
	KeyOTLPInsecure + " for a collector without TLS"

// maxTLSFile bounds a PEM file the exporter's TLS settings name.
const maxTLSFile = 8 << 20

// endpointError says why the exporter could not reach endpoint, a
// non-empty otlpEndpoint, or returns nil. gRPC takes the text as its
// target: a URL's scheme or a missing host is looked up as a host name
// that never resolves, and a missing port dials 443, so the exporter would
// start and never export.
func endpointError(endpoint string) error {
	switch {
	case strings.TrimSpace(endpoint) != endpoint:
		return errors.New("is padded with spaces, which gRPC would look up as part of the host name")
	case strings.Contains(endpoint, "://"):
		return errors.New("is a URL; the OTLP/gRPC exporter takes host:port and would look the whole text up as a host name, so no trace would ever be exported")
	}
	if u, err := url.Parse("https://" + endpoint); err != nil || u.Host != endpoint {
		// The exporter takes the address through WithEndpointURL, which
		// drops one that is not a URL's host with a line in its own log.
		return errors.New("is not a host:port a URL can carry (user information, an IPv6 zone, a space or a %): the exporter would drop it and send traces where OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_INSECURE say, in clear if that says so, or to localhost:4317")
	}
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		return errors.New("is not host:port: without a port gRPC dials 443, not the collector's OTLP port (4317)")
	}
	if host == "" {
		return errors.New("has no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("has port %q, not a number from 1 to 65535", port)
	}
	return nil
}

// maskUserinfo returns an export address (host:port, or a URL from
// OTEL_EXPORTER_OTLP_*ENDPOINT) with its user information, if any, replaced
// by xxxxx: the OTLP/gRPC exporter never sends it, so whatever is there is
// a credential written in the wrong place, and the address is shown by
// config check, the start's log and /status.
func maskUserinfo(addr string) string {
	start := 0
	if i := strings.Index(addr, "://"); i >= 0 {
		start = i + 3
	}
	end := len(addr)
	if j := strings.IndexAny(addr[start:], "/?#"); j >= 0 {
		end = start + j
	}
	at := strings.LastIndex(addr[start:end], "@")
	if at < 0 {
		return addr
	}
	return addr[:start] + "xxxxx" + addr[start+at:]
}

// exporterOptions returns the exporter's options for o, whose endpoint
// endpointError accepted, dialled as gRPC's DNS target. The file decides
// the security whatever the environment says: insecure credentials outrank a TLS configuration the
// exporter took from OTEL_EXPORTER_OTLP_*CERTIFICATE, and an https:// URL
// turns off OTEL_EXPORTER_OTLP_*INSECURE while keeping that CA.
func exporterOptions(o Options) []otlptracegrpc.Option {
	// The exporter hands its endpoint to grpc.NewClient as the target,
	// where a host named like a resolver (unix:4317, passthrough:4317) is
	// that resolver's: dns:/// makes it the host:port the file names.
	target := otlptracegrpc.WithEndpoint("dns:///" + o.OTLPEndpoint)
	if o.OTLPInsecure {
		return []otlptracegrpc.Option{target, otlptracegrpc.WithTLSCredentials(insecure.NewCredentials())}
	}
	return []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL("https://" + o.OTLPEndpoint), target}
}

// CheckOTLP returns what Setup refuses in o, what the trace exporter
// would drop with no more than a line in its own log (a TLS file named in
// OTEL_EXPORTER_OTLP_* that does not load: it goes on with the system
// roots, or without its client certificate, and the collector refuses
// every export), and the variables the file overrules. getenv reads the
// environment as the exporter does (os.Getenv at the start): `segmesh
// config check` sees its own shell's, the start the service's.
func CheckOTLP(o Options, getenv func(string) string) []problem.Problem {
	var out []problem.Problem
	add := func(sev problem.Severity, key, value, msg, fix string) {
		out = append(out, problem.Problem{Severity: sev, Key: key, Value: value, Message: msg, Fix: fix})
	}
	env := func(name string) string { return strings.TrimSpace(getenv(name)) }
	if o.OTLPEndpoint == "" {
		if o.OTLPInsecure {
			add(problem.SeverityIgnored, KeyOTLPInsecure, "true", "has no effect: "+KeyOTLPEndpoint+" is empty, so no trace is exported", "")
		}
		for _, name := range envNames(envEndpoint) {
			if v := env(name); v != "" {
				add(problem.SeverityWarning, name, maskUserinfo(v), "is set in the environment, but segmesh exports traces only to "+KeyOTLPEndpoint+", which is empty: no trace is exported",
					"write the collector's host:port in "+KeyOTLPEndpoint+", or unset "+name)
			}
		}
		return out
	}
	if err := endpointError(o.OTLPEndpoint); err != nil {
		add(problem.SeverityError, KeyOTLPEndpoint, maskUserinfo(o.OTLPEndpoint), err.Error(), endpointFix)
	}
	for _, name := range envNames(envEndpoint) {
		if v := env(name); v != "" {
			add(problem.SeverityIgnored, name, maskUserinfo(v), "is not used: traces go to "+KeyOTLPEndpoint+" "+maskUserinfo(o.OTLPEndpoint), "")
		}
	}
	for _, name := range envNames(envInsecure) {
		if v := env(name); v != "" {
			add(problem.SeverityIgnored, name, v, fmt.Sprintf("is not used: %s (%v) decides whether traces go over TLS", KeyOTLPInsecure, o.OTLPInsecure), "")
		}
	}
	if o.OTLPInsecure && !config.IsLoopbackListen(o.OTLPEndpoint) {
		add(problem.SeverityWarning, KeyOTLPInsecure, "true", "sends traces to "+maskUserinfo(o.OTLPEndpoint)+" across the network without TLS: their spans name users (UPN) and devices, and anyone on the way reads them",
			"set "+KeyOTLPInsecure+" to false and name the collector's CA in OTEL_EXPORTER_OTLP_CERTIFICATE, or export to a collector on loopback")
		for _, name := range envNames(envHeaders) {
			if env(name) != "" {
				// The value is not shown: it holds the collector's credential.
				add(problem.SeverityWarning, name, "", "is sent with every export without TLS: an Authorization header or API key in it can be read on the way",
					"set "+KeyOTLPInsecure+" to false (the collector's CA in OTEL_EXPORTER_OTLP_CERTIFICATE), or export to a collector on loopback")
			}
		}
	}
	if o.OTLPInsecure {
		ca, cert, key := envNames(envCA), envNames(envClientCert), envNames(envClientKey)
		for _, name := range append(append(ca[:], cert[:]...), key[:]...) {
			v := env(name)
			switch fi, err := os.Stat(v); {
			case v == "":
			case err == nil && !fi.Mode().IsRegular():
				// The exporter reads it at its start all the same
				// (os.ReadFile): a FIFO would block the start for good.
				add(problem.SeverityError, name, v, "is not a regular file ("+fi.Mode().Type().String()+"): the exporter reads it at the start even without TLS, and would wait on it for good",
					"unset "+name+": "+KeyOTLPInsecure+" sends traces without TLS")
			default:
				add(problem.SeverityIgnored, name, v, "is not used: "+KeyOTLPInsecure+" sends traces without TLS", "")
			}
		}
		return out
	}
	for _, name := range envNames(envCA) {
		if path := env(name); path != "" {
			if err := loadCA(path); err != nil {
				if e, ok := errors.AsType[*safefile.ExposedError](err); ok {
					add(problem.SeverityError, name, path, e.Explain(path, "replace")+": whoever replaces the CA poses as the collector and reads every span (UPNs, device IDs)", e.Fix)
					continue
				}
				add(problem.SeverityError, name, path, err.Error()+": the exporter would go on with the system roots and a collector they do not trust would refuse every export",
					"name the PEM file of the CA that issued the collector's certificate, or unset "+name)
			}
		}
	}
	certNames, keyNames := envNames(envClientCert), envNames(envClientKey)
	for i := range certNames {
		cert, key := env(certNames[i]), env(keyNames[i])
		switch {
		case cert == "" && key == "":
		case cert == "" || key == "":
			set, unset := certNames[i], keyNames[i]
			if cert == "" {
				set, unset = unset, set
			}
			add(problem.SeverityError, set, env(set), "is set without "+unset+": the exporter uses neither, and a collector that asks for a client certificate refuses every export",
				"set "+unset+" too, or unset "+set)
		default:
			if bad, err := loadKeyPair(cert, key); err != nil {
				if e, ok := errors.AsType[*safefile.ExposedError](err); ok {
					// Which file, not the pair: whoever reads the key (or a
					// certificate file holding one) poses as segmesh to the collector.
					name, path := [2]string{certNames[i], keyNames[i]}[bad], [2]string{cert, key}[bad]
					if bad == 0 && !e.HoldsKey {
						add(problem.SeverityError, name, path, e.Explain(path, "replace")+": whoever replaces it chooses the certificate segmesh shows the collector", e.Fix)
						continue
					}
					add(problem.SeverityError, name, path, e.Explain(path, "read or replace")+": whoever reads the key poses as segmesh to the collector", e.Fix)
					continue
				}
				add(problem.SeverityError, certNames[i], cert, err.Error()+": the exporter would go on without a client certificate, and a collector that asks for one refuses every export",
					"name the PEM client certificate in "+certNames[i]+" and its key in "+keyNames[i]+", or unset both")
			}
		}
	}
	return out
}

// loadCA reads path as the exporter does, as a PEM CA bundle, and as the
// gateway's other trust files are (safefile.ReadTrusted: refused when
// another local user could replace it).
func loadCA(path string) error {
	data, err := safefile.ReadTrusted(path, maxTLSFile)
	if err != nil {
		return fmt.Errorf("cannot be read: %w", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return errors.New("holds no PEM certificate")
	}
	return nil
}

// loadKeyPair reads a client certificate and its key as the exporter
// does, the certificate as a trust file (safefile.ReadTrusted: refused
// when another local user could replace it), the key as the gateway's
// other keys are (safefile.ReadPrivate: refused when another local user
// could read or replace it) and cleared once parsed. bad is the file an error is about: 0 the certificate, 1 the
// key.
func loadKeyPair(certFile, keyFile string) (bad int, err error) {
	cert, err := safefile.ReadTrusted(certFile, maxTLSFile)
	if err != nil {
		return 0, fmt.Errorf("cannot be read: %w", err)
	}
	key, err := safefile.ReadPrivate(keyFile, maxTLSFile)
	if err != nil {
		return 1, fmt.Errorf("its key %s cannot be read: %w", keyFile, err)
	}
	defer clear(key)
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		return 0, fmt.Errorf("does not load with its key: %w", err)
	}
	return 0, nil
}
