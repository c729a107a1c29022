//go:build lab

package security

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/pkg/telemetry/otlptest"
	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
	"github.com/segmesh/segmesh/test/reliability/segproc"
)

// outputs collects everything segmesh wrote or served, by source.
type outputs map[string]string

func (o outputs) get(t *testing.T, name, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	o[name] = string(b)
}

// run runs the segmesh binary to its end and keeps its output.
func (o outputs) run(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, segproc.Binary(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // some of these are meant to fail; only the output matters
	o[name] = out.String()
}

// encodings returns the forms a secret could leak in.
func encodings(b []byte) []string {
	return []string{
		string(b), hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
	}
}

// TestLabNoSecretInAnyOutput runs the demo's requests and some failures
// with segmesh at log level debug — split mode (ticket role in its own
// process) so a ticket and session key can be fetched from the ticket
// role's gRPC API — plus a copy whose LDAP bind DN is wrong, `config
// check` before and after the passwords are encrypted, and `diagnose`. It
// keeps every log, /status.json, /metrics and /readyz, and fails if any
// holds a password, the PFX passcode, the config key, a Negotiate token or
// GSS token, the device's Basic credential, the ticket or its session key.
// It also checks config.key is created 0600 and config.json keeps its mode.
func TestLabNoSecretInAnyOutput(t *testing.T) {
	lab := labenv.Up(t)
	out := outputs{}
	svcPass := lab.SvcPassword(t)
	userPass, err := os.ReadFile(lab.UserPasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	const deviceBasic = "ZGV2aWNlOnBhc3N3b3Jk" // device:password, as the demo sends

	// The loopback collector speaks plaintext: segmesh.telemetry.otlpInsecure
	// (OTEL_EXPORTER_OTLP_INSECURE is not used: the file decides).
	traces := otlptest.Start(t, nil)
	base := func(t *testing.T) map[string]any {
		cfg := segproc.LabConfig(t, lab)
		segproc.Set(cfg, traces.Addr, "segmesh", "telemetry", "otlpEndpoint")
		segproc.Set(cfg, true, "segmesh", "telemetry", "otlpInsecure")
		cfg["clientCertTrustStorePath"] = lab.TrustPFX
		cfg["clientCertTrustStorePasscode"] = lab.TrustPFXPassword + ".plaintext"
		return cfg
	}

	// The ticket role alone, on a gRPC port.
	tdir := t.TempDir()
	tcfg := base(t)
	segproc.Set(tcfg, "127.0.0.1:0", "segmesh", "grpc", "listen")
	tpath := segproc.WriteConfig(t, tdir, tcfg)
	out.run(t, "config check (plaintext secrets)", "config", "check", tpath)
	ticket := segproc.Start(t, tpath, "--roles=ticket")
	if ticket.GRPC == "" {
		t.Fatalf("no gRPC address in the ticket process's log:\n%s", ticket.Output.String())
	}

	// Everything else, using it.
	dir := t.TempDir()
	cfg := base(t)
	segproc.Set(cfg, ticket.GRPC, "segmesh", "peers", "ticket")
	path := segproc.WriteConfig(t, dir, cfg)
	mode0 := mustStat(t, path).Mode().Perm()
	p := segproc.Start(t, path, "--roles=crl,identity,edge")

	hdr := http.Header{"Authorization": {"Basic " + deviceBasic}, "Content-Type": {"application/vnd.ms-sync.wbxml"}}
	for _, rq := range []struct {
		user, path string
		ok         bool
	}{
		{"alice", segproc.EAS("FolderSync", "alice"), true},
		{"bob", segproc.EAS("Sync", "bob"), true},
		{"alice", "/EWS/Exchange.asmx", true},
		{"mallory", segproc.EAS("Ping", "mallory"), true},
		{"alice-revoked", segproc.EAS("Sync", "alice"), false},
		{"eve", segproc.EAS("Sync", "eve"), false},   // sensitive: KDC refuses delegation
		{"dave", segproc.EAS("Sync", "dave"), false}, // disabled
	} {
		r := segproc.Do(segproc.Client(t, lab, rq.user), http.MethodPost, p.URL(rq.path), hdr)
		if (r.Status == 200) != rq.ok {
			t.Errorf("%s %s: %v (want success %v)", rq.user, rq.path, r, rq.ok)
		}
	}
	unknown := mint(t, lab, "nobody", "nobody@lab.test")
	if r := segproc.Do(clientWith(t, lab, &unknown), http.MethodPost, p.URL(segproc.EAS("Sync", "nobody")), hdr); r.Status == 200 {
		t.Errorf("unknown user served: %v", r)
	}

	// alice's ticket and session key, as the ticket role cached them for the edge.
	cc, err := grpc.NewClient(ticket.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cc.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tk, err := ticketv1.NewTicketServiceClient(cc).GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: "alice@lab.test", TargetSpn: lab.TargetSPN})
	if err != nil {
		t.Fatalf("GetServiceTicket: %v", err)
	}
	if len(tk.GetSessionKey()) < 16 || len(tk.GetTicketDer()) < 100 {
		t.Fatalf("ticket role returned a %d-byte key and a %d-byte ticket", len(tk.GetSessionKey()), len(tk.GetTicketDer()))
	}

	for _, prc := range []struct {
		name string
		p    *segproc.Proc
	}{{"edge", p}, {"ticket", ticket}} {
		out.get(t, prc.name+" /status.json", prc.p.AdminURL("/status.json"))
		out.get(t, prc.name+" /metrics", prc.p.AdminURL("/metrics"))
		out.get(t, prc.name+" /readyz", prc.p.AdminURL("/readyz"))
	}
	out.run(t, "config check (encrypted)", "config", "check", path)
	out.run(t, "diagnose alice", "diagnose", "--config", path, "--cert", lab.User("alice").Cert, "--key", lab.User("alice").Key)

	// A copy whose LDAP bind DN is wrong: the identity role's bind fails
	// and segmesh refuses to start, naming the DN.
	bdir := t.TempDir()
	bcfg := base(t)
	segproc.Set(bcfg, "CN=nobody,CN=Users,DC=lab,DC=test", "customGatewaySettings", "cert.mapping.ldap.user")
	out.run(t, "bad bind log", "run", "--config", segproc.WriteConfig(t, bdir, bcfg))

	// Stop everything so the logs are complete, then collect them.
	for _, prc := range []*segproc.Proc{p, ticket} {
		prc.Stop(t)
	}
	out["edge log"], out["ticket log"] = p.Output.String(), ticket.Output.String()
	out["traces (OTLP)"] = traces.Text()
	nspans := traces.Spans()
	if nspans < 10 {
		t.Errorf("the collector received %d spans: the trace search proves little", nspans)
	}

	// Files: config.key 0600, config.json's mode kept, the passwords encrypted.
	for _, d := range []string{dir, tdir, bdir} {
		key := filepath.Join(d, "config.key")
		if m := mustStat(t, key).Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %v, want 0600", key, m)
		}
		cj := filepath.Join(d, "config.json")
		if m := mustStat(t, cj).Mode().Perm(); m != mode0 {
			t.Errorf("%s has mode %v after the rewrite, was %v", cj, m, mode0)
		}
		b, _ := os.ReadFile(cj)
		for _, s := range []string{svcPass, lab.TrustPFXPassword} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s still holds a password in clear after the start", cj)
			}
		}
	}
	keyText, err := os.ReadFile(filepath.Join(dir, "config.key"))
	if err != nil {
		t.Fatal(err)
	}

	secrets := map[string][]string{
		"service account password": {svcPass},
		"user password":            {strings.TrimSpace(string(userPass))},
		"trust PFX passcode":       {lab.TrustPFXPassword},
		"device PFX password":      {lab.PFXPassword},
		"device Basic credential":  {deviceBasic},
		"config key":               {strings.TrimSpace(string(keyText))},
		"session key":              encodings(tk.GetSessionKey()),
		"ticket":                   encodings(tk.GetTicketDer()),
	}
	tokens := regexp.MustCompile(`(?i)(negotiate|kerberos|bearer|basic) [A-Za-z0-9+/=_-]{12,}|YII[A-Za-z0-9+/]{20,}|oYI[A-Za-z0-9+/]{20,}`)
	leaks := func(text string) []string {
		var found []string
		for what, forms := range secrets {
			for _, f := range forms {
				if f != "" && strings.Contains(text, f) {
					found = append(found, what)
				}
			}
		}
		if m := tokens.FindString(text); m != "" {
			found = append(found, "a token "+m[:min(len(m), 24)]+"…")
		}
		return found
	}
	// The search finds what it looks for (a canary of each kind).
	for _, canary := range []string{
		`level=DEBUG msg=x header="Negotiate YIIHPQYGKwYBBQUCoIIHMTCCBy2gMDAuBgkqhkiC9xIBAgIGCSqGSIb3EgECAgYKKwYBBAGCNwICHgYKKwYBBAGCNwICCg=="`,
		"err=\"bind with " + svcPass + "\"",
		"key=" + hex.EncodeToString(tk.GetSessionKey()),
	} {
		if len(leaks(canary)) == 0 {
			t.Fatalf("the search misses a canary: %.40s…", canary)
		}
	}
	var total int
	for src, text := range out {
		total += len(text)
		for _, what := range leaks(text) {
			t.Errorf("%s holds the %s", src, what)
		}
	}
	t.Logf("searched %d outputs, %d bytes (%d spans)", len(out), total, nspans)
	if !strings.Contains(out["edge log"], "level=DEBUG") || !strings.Contains(out["bad bind log"], "bind as CN=nobody") || total < 10000 {
		t.Errorf("the outputs look incomplete (%d bytes): the search proves nothing", total)
	}
}

func mustStat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}
