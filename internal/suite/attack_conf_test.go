package suite

import (
	"context"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

// Attack tests of the reviewer rvconf (session 7) on the files the start,
// `config check` and every reload now read (startFileProblems, 238f888).

// saveTokenFile writes config.json naming tokenFile as segmesh.admin.tokenFile.
func saveTokenFile(tb testing.TB, path, tokenFile string) {
	tb.Helper()
	cfg := reloadConfig("info", false, "", "")
	cfg["segmesh"].(map[string]any)["admin"] = map[string]any{"tokenFile": tokenFile}
	writeJSON(tb, path, cfg)
}

// TestAttackTokenFileOversized: segmesh.admin.tokenFile naming a large file
// (a log file, a disk image) was read whole by every reload and `config
// check` since 238f888, into the running gateway's memory (a 10 GB file:
// the process and every role in it killed), and a large file holding one
// word was taken as the token. On main the 1 MiB file below was accepted
// by the start's checks and by the reload. The file is refused by its size,
// and the refusal does not quote its content.
func TestAttackTokenFileOversized(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	writeJSON(t, path, reloadConfig("info", false, "", ""))
	r, _, _ := crlReloader(t, path, new(slog.LevelVar), nil)
	big := filepath.Join(dir, "big-token")
	word := strings.Repeat("a", 1<<20)
	if err := os.WriteFile(big, []byte(word+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	saveTokenFile(t, path, big)
	next, report, err := LoadForRun(path, []string{"crl"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("config.Load refuses the file itself: %v", err)
	}
	isToken := func(p config.Problem) bool {
		return p.Key == "segmesh.admin.tokenFile" && p.Severity == config.SeverityError
	}
	start := Validate(next, report, []string{"crl"})
	if !slices.ContainsFunc(start, isToken) {
		t.Errorf("the start's checks %+v accept a 1 MiB token file", start)
	}
	err = r.Reload(context.Background(), "SIGHUP")
	st := r.Status()
	if err == nil || !slices.ContainsFunc(st.Refused, isToken) {
		t.Fatalf("reload err %v, refused %+v, pending %v: a 1 MiB token file was accepted", err, st.Refused, st.RestartPending)
	}
	for _, p := range append(start, st.Refused...) {
		if strings.Contains(p.Message+p.Value+p.Fix, word[:64]) {
			t.Errorf("a refusal quotes the file's content: %+v", p)
		}
	}
}

// TestAttackTokenFileNotRegular: the token file the running configuration
// names is replaced by a FIFO (no writer: a plain open blocks for ever), or
// a symbolic link to /dev/zero (endless), or a directory. The poll and the
// reload return, the save is refused naming segmesh.admin.tokenFile, and
// adminToken itself (the start's read, which opens the file without
// blocking and checks the open descriptor) refuses each. Held on main for
// the poll and the reload (each read is preceded by a check by path, so
// only a swap between the check and the read reaches the read); on main
// adminToken itself blocked on the FIFO and read /dev/zero until the test
// binary was killed for its memory.
func TestAttackTokenFileNotRegular(t *testing.T) {
	for _, kind := range safefiletest.Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.json")
			tok := filepath.Join(dir, "token")
			if err := os.WriteFile(tok, []byte("0123456789abcdef\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			saveTokenFile(t, path, tok)
			r, _, _ := crlReloader(t, path, new(slog.LevelVar), nil)
			if err := os.Remove(tok); err != nil {
				t.Fatal(err)
			}
			unblock := safefiletest.Make(t, kind, tok)
			c := config.Default()
			c.BaseDir = dir
			c.Segmesh.Admin.TokenFile = tok
			var tokErr error
			safefiletest.Within(t, "adminToken", unblock, func() { _, tokErr = adminToken(&c) })
			if tokErr == nil {
				t.Errorf("adminToken accepted %s", kind)
			}
			safefiletest.Within(t, "the poll", unblock, func() { r.Poll(context.Background()) })
			var err error
			safefiletest.Within(t, "SIGHUP", unblock, func() { err = r.Reload(context.Background(), "SIGHUP") })
			st := r.Status()
			if err == nil || !slices.ContainsFunc(st.Refused, func(p config.Problem) bool { return p.Key == "segmesh.admin.tokenFile" }) {
				t.Errorf("reload err %v, refused %+v: %s as the token file was not refused", err, st.Refused, kind)
			}
		})
	}
}

// TestAttackStartFileRefusalsHoldNoSecret: the refusals the start's files
// now give (shown on /status, in the log, by `config check`) name paths and
// reasons, never the admin token or a line of the gRPC private key: a token
// file holding two words, the certificate and key files switched, a key
// not matching the certificate. Held on main.
func TestAttackStartFileRefusalsHoldNoSecret(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "Role CA")
	cert, key := ca.Server(t, []string{"127.0.0.1"}).WriteFiles(t, dir, "one")
	_, otherKey := ca.Server(t, []string{"127.0.0.1"}).WriteFiles(t, dir, "two")
	caFile := filepath.Join(dir, "role-ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(dir, "token")
	const secretWord = "s3cr3t-admin-token-0451"
	if err := os.WriteFile(tokFile, []byte(secretWord+" second\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Secrets: the token and every base64 run of 16 bytes of both keys.
	secrets := []string{secretWord}
	for _, k := range []string{key, otherKey} {
		b, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			line = strings.TrimSpace(line)
			if _, err := base64.StdEncoding.DecodeString(line); err == nil && len(line) >= 16 {
				secrets = append(secrets, line[:16])
			}
		}
	}
	for _, tc := range []struct {
		name, key string
		set       func(c *config.Config)
	}{
		{"a token file of two words", "segmesh.admin.tokenFile", func(c *config.Config) { c.Segmesh.Admin.TokenFile = tokFile }},
		{"certificate and key switched", "segmesh.grpc.certFile", func(c *config.Config) {
			c.Segmesh.GRPC.CertFile, c.Segmesh.GRPC.KeyFile, c.Segmesh.GRPC.CAFile = key, cert, caFile
		}},
		{"a key not matching", "segmesh.grpc.certFile", func(c *config.Config) {
			c.Segmesh.GRPC.CertFile, c.Segmesh.GRPC.KeyFile, c.Segmesh.GRPC.CAFile = cert, otherKey, caFile
		}},
		{"the key named as the CA", "segmesh.grpc.certFile", func(c *config.Config) {
			c.Segmesh.GRPC.CertFile, c.Segmesh.GRPC.KeyFile, c.Segmesh.GRPC.CAFile = cert, key, otherKey
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			c.BaseDir = dir
			tc.set(&c)
			ps := startFileProblems(&c)
			if !slices.ContainsFunc(ps, func(p config.Problem) bool { return p.Key == tc.key && p.Severity == config.SeverityError }) {
				t.Fatalf("problems %+v: %s is not refused", ps, tc.name)
			}
			for _, p := range ps {
				text := p.Error()
				for _, s := range secrets {
					if strings.Contains(text, s) {
						t.Errorf("%q quotes a secret (%q)", text, s)
					}
				}
			}
		})
	}
}

// TestAttackRestartDependentsExemptsOnlyTheRunningProblem: restartDependents
// leaves out a problem "the configuration in force already has" (8ef6b99).
// A start never has one in production (run refuses it; only a start
// adjusted past config.Load, as internal/testenv's, carries one), but were
// it there, it must not excuse a second, different weakening the save
// makes on the same setting: the running edge adjusted to an Exchange URL
// holding /EWS, and a save of another URL holding
// /Microsoft-Server-ActiveSync with segmesh.edge.paths (restart) dropping
// it. The new problem names its own URL, so it is refused; only the
// running problem itself is left out. Held on main.
func TestAttackRestartDependentsExemptsOnlyTheRunningProblem(t *testing.T) {
	const good, dn = "ldaps://dc1.corp.example:3269", "CN=svc_seg,CN=Users,DC=corp,DC=example"
	roles := []string{"edge", "identity"}
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	file := loadRuleFiles(t, dir)
	load := func(v map[string]any) *config.Config {
		t.Helper()
		writeJSON(t, path, v)
		c, _, err := LoadForRun(path, roles, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	running := load(file("https://mail.corp.example", nil, true, good, dn))
	running.Segmesh.Edge.ExchangeURLs = []string{"https://mail.corp.example/EWS"} // adjusted past Load
	isURL := func(p config.Problem) bool {
		return p.Key == "segmesh.edge.exchangeUrls" && p.Severity == config.SeverityError
	}
	if !slices.ContainsFunc(config.Rules(running), isURL) {
		t.Fatal("the adjusted running configuration has no Exchange URL problem: the test sets up nothing")
	}
	for _, tc := range []struct {
		name, url   string
		paths       []string
		wantRefused bool
	}{
		{"another URL holding another forwarded path", "https://mail.corp.example/Microsoft-Server-ActiveSync", []string{"/EWS"}, true},
		{"the same URL the running configuration holds", "https://mail.corp.example/EWS", []string{"/Microsoft-Server-ActiveSync"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := load(file(tc.url, tc.paths, true, good, dn))
			waiting := []string{"segmesh.edge.paths"}
			got := restartDependents(next, keepSettings(next, running, waiting), running, waiting, roles)
			if refused := slices.ContainsFunc(got, isURL); refused != tc.wantRefused {
				t.Errorf("refused %v, want %v: %+v", refused, tc.wantRefused, got)
			}
		})
	}
}

// TestAttackHashFileNeverBlocks: the poll's fingerprint and the reload's
// file hashes list regular files by path and then read them; a file
// swapped in between for a FIFO or a link to /dev/zero must neither block
// nor be read without end (on main the read was os.Open / os.ReadFile: a
// race-only hang of every later reload, which this seam shows without the
// race). A regular file's content is hashed.
func TestAttackHashFileNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, []byte("content"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, kind := range safefiletest.Kinds() {
		p := filepath.Join(dir, string(kind))
		unblock := safefiletest.Make(t, kind, p)
		var b strings.Builder
		safefiletest.Within(t, "hashFile("+p+")", unblock, func() { hashFile(&b, p) })
		if b.Len() != 0 {
			t.Errorf("hashFile(%s) read %d bytes; want none from a file that is not regular", p, b.Len())
		}
	}
	var b strings.Builder
	hashFile(&b, regular)
	if b.String() != "content" {
		t.Errorf("hashFile(regular) = %q, want the content", b.String())
	}
}
