//go:build lab

package suite

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/internal/testpoll"
	"github.com/segmesh/segmesh/pkg/config"
)

// Issue 23 item 4's "done when" against the real lab: segmesh run reads
// the lab's config.json (one file for every process, as a shared ConfigMap
// would be) and polls it; a bounded load of Syncs runs while Pings are held
// at the Exchange stand-in; the SPN, the service account's password (in AD
// with samba-tool and in config.json), the mapping URL and an Exchange URL
// are changed in turn, with no failed request and no dropped Ping; a wrong
// password is kept out and said on /readyz (200), /status and
// segmesh_config_reload_refused. All-in-one, and split (edge | crl and
// identity | ticket). Run:
// flock /tmp/segmesh-lab.lock go test -tags lab -run TestLabReloadUnderLoad -p 1 ./internal/suite/

// reloadProc is one `segmesh run` of the test reading config.json.
type reloadProc struct {
	roles, admin, edge string
	logs               *syncBuffer
}

// runFile runs roles on the config.json at path, polled every 100 ms, with
// the admin and edge listeners on 127.0.0.1:0 and set's changes (peers,
// gRPC listener), which apply to every reload too.
func runFile(t *testing.T, path, roles string, lis net.Listener, set func(*config.Config)) *reloadProc {
	t.Helper()
	ctors, edgeAddr := withEdgeAddr(Constructors())
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	p := &reloadProc{roles: roles, logs: &syncBuffer{}}
	adjust := func(c *config.Config) {
		c.Segmesh.Admin.Listen, c.Segmesh.Edge.Listen = "127.0.0.1:0", "127.0.0.1:0"
		labEngine(c)
		if set != nil {
			set(c)
		}
	}
	go func() {
		done <- run(ctx, Options{ConfigPath: path, Roles: roles, Stderr: p.logs, Constructors: ctors, GRPCListener: lis,
			Ready: func(a string) { ready <- a }, DrainTimeout: 5 * time.Second, ReloadPoll: 100 * time.Millisecond}, adjust)
	}()
	select {
	case p.admin = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("segmesh run --roles %s ended: %v\n%s", roles, err, p.logs)
	case <-time.After(90 * time.Second):
		cancel()
		t.Fatalf("segmesh run --roles %s not started in 90 s\n%s", roles, p.logs)
	}
	p.edge = edgeAddr()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("segmesh run --roles %s did not stop in 30 s", roles)
		}
		if t.Failed() {
			t.Logf("log of --roles %s:\n%s", roles, tail(p.logs.String(), 6000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// reloadStatus is /status.json's reload section and the edge's SPN.
type reloadStatus struct {
	Sections struct {
		Reload ReloadStatus `json:"reload"`
		Edge   struct {
			TargetSPN     string `json:"target_spn"`
			HTTP1Engine   string `json:"http1_engine"`
			RelayRequests int64  `json:"relay_requests"`
		} `json:"edge"`
		Ticket struct {
			TGTs []struct {
				AuthTime time.Time `json:"auth_time"`
			} `json:"tgts"`
		} `json:"ticket"`
	} `json:"sections"`
}

func (p *reloadProc) status(t *testing.T) reloadStatus {
	t.Helper()
	code, body := adminGet(t, p.admin, "/status.json")
	var st reloadStatus
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
		t.Fatalf("/status.json of --roles %s: %d, %v", p.roles, code, err)
	}
	return st
}

// reloadLab is one mode's gateway on the lab and its config.json.
type reloadLab struct {
	lab                  *labenv.Env
	path                 string
	doc                  map[string]any
	edge, ticket, ident  *reloadProc
	procs                []*reloadProc
	edgeURL              string
	sent, failed, pinged atomic.Int64
	failures             sync.Map
	// marks are the lengths of the processes' logs before the last edit.
	marks map[*reloadProc]int
}

// edit changes config.json as an editor or a ConfigMap update would: the
// new file replaces the old by a rename.
func (l *reloadLab) edit(t *testing.T, change func(doc map[string]any)) {
	t.Helper()
	l.marks = map[*reloadProc]int{}
	for _, p := range l.procs {
		l.marks[p] = len(p.logs.String())
	}
	change(l.doc)
	b, err := json.MarshalIndent(l.doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	tmp := l.path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		t.Fatal(err)
	}
}

// obj returns the object at the dotted JSON path of doc, made if missing.
func obj(doc map[string]any, path string) map[string]any {
	m := doc
	for _, k := range strings.Split(path, ".") {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	return m
}

// device is an EAS client presenting user's lab certificate.
func (l *reloadLab) device(t *testing.T, user string) *http.Client {
	t.Helper()
	u := l.lab.User(user)
	cert, err := tls.LoadX509KeyPair(u.Chain, u.Key)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(l.lab.ServerCA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 90 * time.Second}
}

// echo is what the lab's Exchange stand-in answers.
type echo struct {
	RemoteUser string `json:"remote_user"`
	HTTPS      bool   `json:"https"`
}

// is reports whether Exchange saw user (user@lab.test, sent as an
// enterprise name: user\@lab.test@LAB.TEST).
func (e echo) is(user string) bool {
	return strings.HasPrefix(strings.ReplaceAll(e.RemoteUser, `\@`, "@"), user+"@")
}

// eas sends one EAS command; extra are query pairs (hold, 10).
func (l *reloadLab) eas(c *http.Client, cmd, user string, extra ...string) (int, echo, string) {
	q := url.Values{"Cmd": {cmd}, "User": {user}, "DeviceId": {"reload" + user}, "DeviceType": {"SegmeshTest"}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	resp, err := c.Post(l.edgeURL+"/Microsoft-Server-ActiveSync?"+q.Encode(), "application/vnd.ms-sync.wbxml", strings.NewReader("<Sync/>"))
	if err != nil {
		return 0, echo{}, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, echo{}, err.Error()
	}
	var e echo
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e, string(b)
}

// load runs a Sync loop per user until stop closes (at most 100,000
// requests each), counting what failed.
func (l *reloadLab) load(t *testing.T, users []string, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, u := range users {
		c := l.device(t, u)
		wg.Go(func() {
			for i := range 100000 {
				select {
				case <-stop:
					return
				default:
				}
				l.sent.Add(1)
				code, e, body := l.eas(c, "Sync", u)
				if code != http.StatusOK || !e.is(u) {
					l.failed.Add(1)
					l.failures.Store(fmt.Sprintf("%s #%d at %s", u, i, time.Now().Format("15:04:05.000")), fmt.Sprintf("%d %.300s", code, body))
				}
			}
		})
	}
	return &wg
}

// pingResult is a held Ping's answer: what Exchange echoed, or why it
// failed.
type pingResult struct {
	echo
	bad string
}

// heldPing sends a Ping Exchange holds for hold seconds, waits until the
// edge holds it, and returns where its answer arrives.
func (l *reloadLab) heldPing(t *testing.T, user string, hold int) <-chan pingResult {
	t.Helper()
	// The previous Ping's answer reaches the device before the edge stops
	// counting it held. Read as the baseline, it made the count below stay
	// equal when the two crossed (the old one leaving, this one parking):
	// CI rehearsals 2 and 3 timed out so. The test holds one Ping at a
	// time, so wait for none before sending the next.
	testpoll.Until(t, 30*time.Second, "no Ping held before the next one", func() bool {
		n, _ := l.edgeMetric(t, `segmesh_edge_parked_pings`, `state="held"`)
		return n == 0
	})
	before := 0.0
	out := make(chan pingResult, 1)
	c := l.device(t, user)
	go func() {
		code, e, body := l.eas(c, "Ping", user, "hold", fmt.Sprint(hold))
		if code != http.StatusOK || !e.is(user) {
			out <- pingResult{bad: fmt.Sprintf("%d %.300s", code, body)}
			return
		}
		out <- pingResult{echo: e}
	}()
	// A Ping answered before it was held (a refusal, an error) fails at
	// once with its answer, not after the wait below with none.
	var early *pingResult
	testpoll.Until(t, 60*time.Second, "the Ping held at Exchange", func() bool {
		select {
		case r := <-out:
			early = &r
			return true
		default:
		}
		n, _ := l.edgeMetric(t, `segmesh_edge_parked_pings`, `state="held"`)
		return n > before
	})
	if early != nil {
		t.Fatalf("%s's Ping (hold %d s) was answered before it was held at Exchange: %s (echo %+v)", user, hold, early.bad, early.echo)
	}
	l.pinged.Add(1)
	return out
}

func (l *reloadLab) edgeMetric(t *testing.T, name string, labels ...string) (float64, bool) {
	return (&labProc{admin: l.edge.admin}).metric(t, name, labels...)
}

// pingAnswered waits for a held Ping's answer: 200 from Exchange.
func pingAnswered(t *testing.T, what string, ch <-chan pingResult) echo {
	t.Helper()
	select {
	case r := <-ch:
		if r.bad != "" {
			t.Errorf("the Ping held across %s: %s", what, r.bad)
		}
		return r.echo
	case <-time.After(120 * time.Second):
		t.Errorf("the Ping held across %s was not answered in 120 s", what)
	}
	return echo{}
}

// applied waits until p logs a reload applying key after the last edit.
// The log is read, not /status.json's last reload: run encrypts a
// ".plaintext" secret and rewrites config.json, which is one more reload
// that applies nothing.
func (l *reloadLab) applied(t *testing.T, p *reloadProc, key string) {
	t.Helper()
	testpoll.Until(t, 60*time.Second, fmt.Sprintf("--roles %s to apply %s", p.roles, key), func() bool {
		for line := range strings.SplitSeq(p.logs.String()[l.marks[p]:], "\n") {
			if strings.Contains(line, "configuration reloaded") && strings.Contains(line, key) {
				return true
			}
		}
		return false
	})
}

func TestLabReloadUnderLoad(t *testing.T) {
	lab := labenv.Up(t)
	if lab.SecondSPN == "" {
		t.Fatal("the lab has no second SPN of the Exchange stand-in: run lab.sh up")
	}
	for _, mode := range []string{"all-in-one", "split"} {
		t.Run(mode, func(t *testing.T) { labReloadUnderLoad(t, lab, mode) })
	}
}

func labReloadUnderLoad(t *testing.T, lab *labenv.Env, mode string) {
	raw, err := os.ReadFile(lab.SegmeshConfig)
	if err != nil {
		t.Fatal(err)
	}
	l := &reloadLab{lab: lab, path: filepath.Join(t.TempDir(), "config.json")}
	if err := json.Unmarshal(raw, &l.doc); err != nil {
		t.Fatal(err)
	}
	obj(l.doc, "segmesh.crl")["stateDir"] = t.TempDir()
	l.edit(t, func(map[string]any) {})
	if mode == "all-in-one" {
		p := runFile(t, l.path, "all", nil, nil)
		l.edge, l.ticket, l.ident, l.procs = p, p, p, []*reloadProc{p}
	} else {
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		bl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l.ticket = runFile(t, l.path, "ticket", tl, func(c *config.Config) { c.Segmesh.GRPC.Listen = tl.Addr().String() })
		l.ident = runFile(t, l.path, "crl,identity", bl, func(c *config.Config) { c.Segmesh.GRPC.Listen = bl.Addr().String() })
		l.edge = runFile(t, l.path, "edge", nil, func(c *config.Config) {
			c.Segmesh.Peers.Ticket, c.Segmesh.Peers.Identity, c.Segmesh.Peers.CRL = tl.Addr().String(), bl.Addr().String(), bl.Addr().String()
		})
		l.procs = []*reloadProc{l.ticket, l.ident, l.edge}
	}
	l.edgeURL = "https://" + l.edge.edge
	if code, _, body := l.eas(l.device(t, "alice"), "Sync", "alice"); code != http.StatusOK {
		t.Fatalf("before any change: %d %.300s", code, body)
	}
	stop := make(chan struct{})
	wg := l.load(t, []string{"alice", "user0002"}, stop)
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopLoad)

	// 1. An Exchange URL: https to http, the same stand-in. New requests
	// go to the new URL; the Ping held at the old one is answered there.
	ping := l.heldPing(t, "user0001", 15)
	l.edit(t, func(d map[string]any) { obj(d, "segmesh.edge")["exchangeUrls"] = []any{lab.ExchangeURL} })
	l.applied(t, l.edge, "segmesh.edge.exchangeUrls")
	c := l.device(t, "alice")
	testpoll.Until(t, 60*time.Second, "a request answered over the new http URL", func() bool {
		code, e, _ := l.eas(c, "Sync", "alice")
		return code == http.StatusOK && !e.HTTPS
	})
	if e := pingAnswered(t, "the Exchange URL change", ping); !e.HTTPS {
		t.Error("the Ping held across the Exchange URL change was answered over the new URL, want the one it was sent to")
	}

	// 2. The SPN, in the three steps docs/operations.md gives, so that an
	// edge and a ticket replica reloading at different moments always
	// agree: add the new SPN, make it the first (the edge asks for it),
	// drop the old one (the ticket role drops its tickets).
	ping = l.heldPing(t, "user0001", 15)
	for _, spns := range []string{lab.TargetSPN + "," + lab.SecondSPN, lab.SecondSPN + "," + lab.TargetSPN, lab.SecondSPN} {
		l.edit(t, func(d map[string]any) { obj(d, "kcd")["targetSPN"] = spns })
		l.applied(t, l.edge, "kcd.targetSPN")
		if l.ticket != l.edge {
			l.applied(t, l.ticket, "kcd.targetSPN")
		}
	}
	if got := l.edge.status(t).Sections.Edge.TargetSPN; got != lab.SecondSPN {
		t.Errorf("the edge asks tickets for %q, want %q", got, lab.SecondSPN)
	}
	if code, e, body := l.eas(c, "Sync", "alice"); code != http.StatusOK || !e.is("alice") {
		t.Errorf("alice with a ticket for the new SPN: %d %.300s", code, body)
	}
	pingAnswered(t, "the SPN change", ping)

	// 3. The service account's password: rotated in AD, then in
	// config.json (the secrets file: ".plaintext", encrypted by run).
	// The ticket role proves it with an AS exchange before using it.
	ping = l.heldPing(t, "user0001", 20)
	orig := lab.SvcPassword(t)
	rotated := "Rotated-" + fmt.Sprint(time.Now().UnixNano()%1e6) + "-Pw!"
	lab.SetSvcPassword(t, rotated)
	authBefore := l.ticket.status(t).Sections.Ticket.TGTs
	l.edit(t, func(d map[string]any) { obj(d, "kcd")["serviceAccountPassword"] = rotated + config.PlaintextSuffix })
	l.applied(t, l.ticket, "kcd.serviceAccountPassword")
	if l.ident != l.ticket {
		l.applied(t, l.ident, "kcd.serviceAccountPassword")
	}
	if tgts := l.ticket.status(t).Sections.Ticket.TGTs; len(tgts) == 0 || len(authBefore) > 0 && !tgts[0].AuthTime.After(authBefore[0].AuthTime) {
		t.Errorf("the ticket role's TGT was not renewed with the new password: before %v, after %v", authBefore, tgts)
	}

	// 4. A broken edit, a wrong password: refused whole by the ticket
	// role's AS exchange, said on /readyz (200), /status and the metric;
	// the gateway goes on with the rotated one.
	l.edit(t, func(d map[string]any) {
		obj(d, "kcd")["serviceAccountPassword"] = "Wrong-" + rotated + config.PlaintextSuffix
	})
	testpoll.Until(t, 60*time.Second, "the wrong password refused on /readyz", func() bool {
		code, body := adminGet(t, l.ticket.admin, "/readyz")
		return code == http.StatusOK && strings.Contains(body, "reload refused")
	})
	if _, body := adminGet(t, l.ticket.admin, "/status"); !strings.Contains(body, "KDC_ERR_PREAUTH_FAILED") {
		t.Errorf("/status does not show the KDC's refusal:\n%s", grepLines(body, "refused"))
	}
	if v, ok := (&labProc{admin: l.ticket.admin}).metric(t, "segmesh_config_reload_refused"); !ok || v != 1 {
		t.Errorf("segmesh_config_reload_refused = %v (%v), want 1", v, ok)
	}
	if code, _, body := l.eas(c, "Sync", "alice"); code != http.StatusOK {
		t.Errorf("served after the refused edit: %d %.300s", code, body)
	}
	pingAnswered(t, "the password rotation", ping)

	// 5. The mapping URL: LDAPS through the forwarder to LDAPS on the DC
	// itself... the one the identity role proves before it switches.
	ping = l.heldPing(t, "user0001", 15)
	l.edit(t, func(d map[string]any) {
		obj(d, "kcd")["serviceAccountPassword"] = rotated + config.PlaintextSuffix
		obj(d, "customGatewaySettings")["cert.mapping.ldap.url"] = lab.LDAPURL
		obj(d, "segmesh.identity")["ldapStartTls"] = true
	})
	l.applied(t, l.ident, config.KeyCertMappingLDAPURL)
	pingAnswered(t, "the mapping URL change", ping)

	// Back to the lab's password, in AD first (the rotated one's TGT
	// stays valid meanwhile), then in config.json.
	lab.Run(t, "svc-password", "--reset")
	l.edit(t, func(d map[string]any) { obj(d, "kcd")["serviceAccountPassword"] = orig + config.PlaintextSuffix })
	l.applied(t, l.ticket, "kcd.serviceAccountPassword")

	stopLoad()
	engineCarried(t, l.edge.status(t).Sections.Edge.HTTP1Engine, l.edge.status(t).Sections.Edge.RelayRequests)
	if n := l.failed.Load(); n != 0 {
		l.failures.Range(func(k, v any) bool { t.Errorf("request %v failed: %v", k, v); return true })
		t.Fatalf("%d of %d requests failed across the reloads", n, l.sent.Load())
	}
	t.Logf("%s: %d requests and %d held Pings across the changes, none failed", mode, l.sent.Load(), l.pinged.Load())
}
