package cli

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseArgsAcceptsFlagsAfterArguments(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos []string
		wantQ   bool
	}{
		{[]string{"config.json"}, []string{"config.json"}, false},
		{[]string{"-q", "config.json"}, []string{"config.json"}, true},
		{[]string{"config.json", "-q"}, []string{"config.json"}, true},
		{[]string{"a", "-q", "b"}, []string{"a", "b"}, true},
		{[]string{"--", "-q"}, []string{"-q"}, false},
		{[]string{"a", "--", "-q"}, []string{"a", "-q"}, false},
		{nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			q := fs.Bool("q", false, "")
			pos, err := parseArgs(fs, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pos, tt.wantPos) || *q != tt.wantQ {
				t.Fatalf("parseArgs(%q) = %q, q=%v; want %q, q=%v", tt.args, pos, *q, tt.wantPos, tt.wantQ)
			}
		})
	}
}

// TestCLIFirstDay: the command-line mistakes of an admin's first day
// (issue 27 item 4), each with the exit code and the words that help.
func TestCLIFirstDay(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	broken := filepath.Join(dir, "config.json")
	tests := []struct {
		name     string
		setup    func(t *testing.T)
		args     []string
		code     int
		inStdout []string
		inStderr []string
		notIn    []string // in neither
	}{
		{"run without --config and no ./config.json says so", nil, []string{"run"}, 1,
			nil, []string{"no configuration at config.json", "--config", "config init"}, nil},
		{"run without --config reads ./config.json", func(t *testing.T) {
			if err := os.WriteFile(broken, []byte(`{"kcd": {"enabled": "yes"}}`), 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"run"}, 1, nil, []string{"kcd.enabled"}, []string{"no configuration at"}},
		{"flags after the file", func(t *testing.T) {
			if err := os.WriteFile(broken, []byte(checkDoc), 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"config", "check", "config.json", "-q"}, 1, []string{"names both PEM and PFX files"}, nil, []string{"effective configuration", "takes one file"}},
		{"config -h explains the subcommands", nil, []string{"config", "-h"}, 0,
			[]string{"config check", "config init", "config encrypt"}, nil, []string{"unknown config subcommand"}},
		{"diagnose -h shows its synopsis and flags", nil, []string{"diagnose", "-h"}, 0,
			nil, []string{"Usage: segmesh diagnose", "-config string", "-cert string"}, []string{"-config segmesh run"}},
		{"config check -h says what it does", nil, []string{"config", "check", "-h"}, 0,
			nil, []string{"Usage: segmesh config check", "writes nothing"}, nil},
		{"diagnose without --cert names --upn", nil, []string{"diagnose"}, 2,
			nil, []string{"--upn user@corp.example"}, nil},
		{"diagnose takes --cert or --upn, not both", nil, []string{"diagnose", "--cert", "a.pem", "--upn", "alice@corp.example"}, 2,
			nil, []string{"not both"}, nil},
		{"the lab is not a command of the production binary", nil, []string{"lab", "up"}, 2,
			nil, []string{`unknown command "lab"`}, nil},
		{"usage lists config encrypt and not the lab", nil, []string{"help"}, 0,
			[]string{"config encrypt"}, nil, []string{"segmesh lab"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			code, out, errOut := run(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			for _, w := range tt.inStdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.inStderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			for _, w := range tt.notIn {
				if strings.Contains(out, w) || strings.Contains(errOut, w) {
					t.Errorf("output holds %q:\n%s\n%s", w, out, errOut)
				}
			}
		})
	}
}

func TestConfigEncrypt(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SEGMESH_CONFIG_KEY", "")
	t.Setenv("SEGMESH_CONFIG_KEY_FILE", "")
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, []byte(checkDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "config", "encrypt", p)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"pfx-Secret-123", "Svc-Secret-456"} {
		if strings.Contains(string(data), secret) {
			t.Fatalf("%s still in clear in the file:\n%s", secret, data)
		}
		if strings.Contains(out, secret) || strings.Contains(errOut, secret) {
			t.Fatalf("%s printed", secret)
		}
	}
	if strings.Count(string(data), `"enc:v1:`) != 2 || !strings.Contains(out, "kcd.serviceAccountPassword") {
		t.Fatalf("not both secrets encrypted:\n%s\n%s", data, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "config.key")); err != nil {
		t.Fatalf("no key beside the file: %v", err)
	}
	// A second run has nothing to do and says so.
	code, out, _ = run(t, "config", "encrypt", p)
	if code != 0 || !strings.Contains(out, "nothing to encrypt") {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
}
