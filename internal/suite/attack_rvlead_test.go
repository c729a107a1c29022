package suite

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// newBootReloader is newTestReloader whose start (boot) configuration is
// boot rather than reloadConfig's process without a gRPC listener.
func newBootReloader(t testing.TB, g applier, boot map[string]any) (*reloader, string, *slog.LevelVar) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	writeJSON(t, path, boot)
	cfg, _, err := LoadForRun(path, []string{"crl"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	level := new(slog.LevelVar)
	prov, err := telemetry.Setup(context.Background(), telemetry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prov.Shutdown(context.Background()) })
	r, err := newReloader(path, []string{"crl"}, cfg, nil, slog.New(slog.DiscardHandler), level, g, nil, prov.Meter.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	return r, path, level
}

// goneEnv is fakeListenEnv without 10.1.2.3: the address moved away.
func goneEnv() listenEnv {
	e := fakeListenEnv(1024, false)
	e.addrs = func() ([]net.Addr, error) {
		_, n, _ := net.ParseCIDR("127.0.0.1/8")
		return []net.Addr{n}, nil
	}
	return e
}

// TestAttackReloadListenerNotRunning (rvlead, session 9, attack on
// e2d0888): forReload downgrades a listener problem "the running
// configuration has as well", but compares with the last ACCEPTED
// configuration (r.cur), not with the one the listeners were opened from
// (r.boot). A listener added or moved by an earlier reload waits for a
// restart and is not open; once its address is gone, a later save keeping
// it is accepted with a warning saying the listener "stays open", and the
// pending restart stops on it. The lead's own rule ("a listener the save
// moves or adds is judged as before") says refuse.
func TestAttackReloadListenerNotRunning(t *testing.T) {
	cases := []struct {
		name     string
		bootAddr string // the gRPC listener the process opened ("" none)
	}{
		{"listener added by an earlier reload (none at the start)", ""},
		{"listener moved by an earlier reload", "127.0.0.1:9443"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			saved := machineEnv
			t.Cleanup(func() { machineEnv = saved })
			machineEnv = fakeListenEnv(1024, false) // holds 10.1.2.3
			boot := reloadConfig("info", false, "", "")
			if tc.bootAddr != "" {
				boot = meshListen("info", tc.bootAddr)
			}
			r, path, level := newBootReloader(t, &fakeApplier{}, boot)
			ctx := context.Background()
			writeJSON(t, path, meshListen("info", "10.1.2.3:9443"))
			if err := r.Reload(ctx, "SIGHUP"); err != nil {
				t.Fatalf("moving the listener to a held address refused: %v", err)
			}
			machineEnv = goneEnv()
			writeJSON(t, path, meshListen("debug", "10.1.2.3:9443"))
			err := r.Reload(ctx, "SIGHUP")
			if err == nil {
				t.Errorf("accepted (log level %v): a listener the process never opened, whose address is gone, was judged a problem 'the running configuration has as well'; problems: %+v", level.Level(), r.Problems())
			}
		})
	}
}

// TestAttackReloadListenerRunningGoneWarns is the control: the listener
// opened at the start keeps its address, the address goes away; a save
// keeping it applies and /status's problems (r.Problems) name it as a
// warning; a save that moves it elsewhere gone is refused; a save that
// adds a second listener on the same port is refused.
func TestAttackReloadListenerRunningGoneWarns(t *testing.T) {
	saved := machineEnv
	t.Cleanup(func() { machineEnv = saved })
	machineEnv = fakeListenEnv(1024, false)
	r, path, level := newBootReloader(t, &fakeApplier{}, meshListen("info", "10.1.2.3:9443"))
	ctx := context.Background()
	machineEnv = goneEnv()
	writeJSON(t, path, meshListen("debug", "10.1.2.3:9443"))
	if err := r.Reload(ctx, "SIGHUP"); err != nil {
		t.Fatalf("refused: %v", err)
	}
	if level.Level() != slog.LevelDebug {
		t.Fatalf("log level %v, want debug", level.Level())
	}
	if !slices.ContainsFunc(r.Problems(), func(p config.Problem) bool {
		return p.Key == "segmesh.grpc.listen" && p.Severity == config.SeverityWarning
	}) {
		t.Fatalf("no warning on /status: %+v", r.Problems())
	}
	for _, c := range []struct {
		name string
		cfg  map[string]any
	}{
		{"moved to another gone address", meshListen("info", "10.1.2.4:9443")},
		{"same host, other port", meshListen("info", "10.1.2.3:9444")},
		{"admin listener added on the same port", func() map[string]any {
			m := meshListen("info", "10.1.2.3:9443")
			sub(m, "segmesh")["admin"] = map[string]any{"listen": ":9443"}
			return m
		}()},
	} {
		writeJSON(t, path, c.cfg)
		if err := r.Reload(ctx, "SIGHUP"); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

// TestAttackAdminTokenFileTricks: a FIFO (must not hang), symbolic links
// to an exposed file or through a directory others write, an oversized
// private file, a directory, a token with spaces: all refused, and no
// refusal quotes the file's content.
func TestAttackAdminTokenFileTricks(t *testing.T) {
	const secret = "0123456789abcdefSECRET"
	cases := []struct {
		name string
		make func(t *testing.T, dir string) string
	}{
		{"FIFO", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "fifo")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Skip(err)
			}
			return p
		}},
		{"symlink in a private directory to a 0644 file", func(t *testing.T, dir string) string {
			pub := filepath.Join(t.TempDir(), "pub")
			mustWrite(t, pub, secret+"\n", 0o644)
			l := filepath.Join(dir, "token")
			mustSymlink(t, pub, l)
			return l
		}},
		{"symlink to a 0600 file in a 0777 directory", func(t *testing.T, dir string) string {
			open := filepath.Join(t.TempDir(), "open")
			if err := os.Mkdir(open, 0o700); err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(open, "token")
			mustWrite(t, f, secret+"\n", 0o600)
			if err := os.Chmod(open, 0o777); err != nil {
				t.Fatal(err)
			}
			l := filepath.Join(dir, "token")
			mustSymlink(t, f, l)
			return l
		}},
		{"symlink through a 0777 directory link", func(t *testing.T, dir string) string {
			open := filepath.Join(t.TempDir(), "open")
			if err := os.Mkdir(open, 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(open, 0o777); err != nil {
				t.Fatal(err)
			}
			priv := filepath.Join(t.TempDir(), "priv")
			if err := os.Mkdir(priv, 0o700); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, filepath.Join(priv, "token"), secret+"\n", 0o600)
			mustSymlink(t, priv, filepath.Join(open, "hop"))
			l := filepath.Join(dir, "d")
			mustSymlink(t, filepath.Join(open, "hop"), l)
			return filepath.Join(l, "token")
		}},
		{"oversized 0600", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "token")
			mustWrite(t, p, secret+strings.Repeat("a", 8<<10), 0o600)
			return p
		}},
		{"a directory", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "sub")
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"two words", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "token")
			mustWrite(t, p, "Bearer "+secret+"\n", 0o600)
			return p
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "admin")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			cfg := &config.Config{}
			cfg.Segmesh.Admin.TokenFile = tc.make(t, dir)
			got, err := adminToken(cfg)
			if err == nil {
				t.Fatalf("accepted, token %q", got)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("refusal quotes the file's content: %v", err)
			}
			ps := startFileProblems(cfg)
			if !slices.ContainsFunc(ps, func(p config.Problem) bool {
				return p.Key == "segmesh.admin.tokenFile" && p.Severity == config.SeverityError
			}) {
				t.Errorf("start/reload/check (startFileProblems) disagree with adminToken: %+v", ps)
			}
			for _, p := range ps {
				if strings.Contains(p.String(), "SECRET") {
					t.Errorf("problem quotes the file's content: %s", p.String())
				}
			}
		})
	}
}

func mustWrite(t testing.TB, p, s string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t testing.TB, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// unhashableErr is an error whose dynamic type cannot be a map key (as a
// library's error value holding a slice, gokrb5's krberror.Krberror).
type unhashableErr []string

func (e unhashableErr) Error() string { return strings.Join(e, "; ") }

// TestAttackForReloadUnhashableErr: forReload keys a map by the whole
// config.Problem, Err included; an error problem from Validate whose Err
// (config.ProblemOf keeps any role's error as it is) has an unhashable
// dynamic type made the lookup panic ("hash of unhashable type") in the
// reload, not a refusal.
func TestAttackForReloadUnhashableErr(t *testing.T) {
	running := listenConfig("127.0.0.1:8080", "", "127.0.0.1:8443")
	ps := []config.Problem{{Severity: config.SeverityError, Key: "segmesh.edge.trustStore", Message: "bad", Err: unhashableErr{"a", "b"}}}
	var got []config.Problem
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Fatalf("forReload panicked: %v", v)
			}
		}()
		got = forReload(ps, running, nil, fakeListenEnv(1024, false))
	}()
	if len(got) != 1 || got[0].Severity != config.SeverityError {
		t.Fatalf("forReload = %+v, want the error kept", got)
	}
}

// TestAttackReloadKeepsExposedToken: a token file made readable by others
// after the start (chmod 644) is refused by the next reload, as by the
// start and config check, and the refusal is on /status (r.Problems)
// without the token; a reload that names another exposed token file is
// refused too.
func TestAttackReloadKeepsExposedToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "admin")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(dir, "token")
	mustWrite(t, tok, "0123456789abcdefSECRET\n", 0o600)
	withToken := func(level, file string) map[string]any {
		m := reloadConfig(level, false, "", "")
		sub(m, "segmesh")["admin"] = map[string]any{"tokenFile": file}
		return m
	}
	r, path, level := newBootReloader(t, &fakeApplier{}, withToken("info", tok))
	ctx := context.Background()
	if err := os.Chmod(tok, 0o644); err != nil {
		t.Fatal(err)
	}
	writeJSON(t, path, withToken("debug", tok))
	err := r.Reload(ctx, "SIGHUP")
	if err == nil {
		t.Fatal("a reload kept a token file others may now read")
	}
	if level.Level() == slog.LevelDebug {
		t.Fatal("the refused reload applied its log level")
	}
	refused := slices.ContainsFunc(r.Problems(), func(p config.Problem) bool {
		return p.Key == "segmesh.admin.tokenFile" && p.Severity == config.SeverityError
	})
	if !refused {
		t.Fatalf("/status does not name the exposed token file: %+v", r.Problems())
	}
	for _, p := range r.Problems() {
		if strings.Contains(p.String(), "SECRET") {
			t.Errorf("/status quotes the token: %s", p.String())
		}
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("the refusal quotes the token: %v", err)
	}
	other := filepath.Join(t.TempDir(), "other")
	mustWrite(t, other, "fedcba9876543210SECRET\n", 0o640)
	if err := os.Chmod(filepath.Dir(other), 0o777); err != nil {
		t.Fatal(err)
	}
	writeJSON(t, path, withToken("debug", other))
	if err := r.Reload(ctx, "SIGHUP"); err == nil {
		t.Fatal("a reload naming a token file in a directory others write was applied")
	}
}
