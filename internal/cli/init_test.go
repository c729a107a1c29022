package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

func TestConfigInitWritesALoadableConfigAndItsNotes(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		realm string
		spn   string
	}{
		{"defaults", nil, "CORP.EXAMPLE", "HTTP/mail.corp.example"},
		{"site flags", []string{"--domain", "EMEA.CONTOSO.COM", "--dc", "dc7.emea.contoso.com", "--exchange", "owa.contoso.com", "--service-account", "svc_awseg"},
			"EMEA.CONTOSO.COM", "HTTP/owa.contoso.com"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "config.json")
			code, out, errOut := run(t, append(append([]string{"config", "init"}, tc.args...), p)...)
			if code != 0 {
				t.Fatalf("exit %d: %s%s", code, out, errOut)
			}
			cfg, rep, err := config.Load(p)
			if err != nil {
				t.Fatalf("the written config does not load: %v", err)
			}
			if cfg.KCD.Domains[0].Domain != tc.realm || cfg.KCD.TargetSPN != tc.spn || !cfg.KCD.Enabled || !cfg.RevocationHonoured() {
				t.Fatalf("config %+v", cfg.KCD)
			}
			// The password is always config init's placeholder; without site
			// flags the names are too (corp.example), and check says so.
			placeholders := 0
			for _, w := range rep.Warnings() {
				switch {
				case w.Key == "kcd.serviceAccountPassword":
				case tc.args == nil && strings.Contains(w.Message, "config init's placeholder"):
					placeholders++
				default:
					t.Errorf("unexpected warning: %s", w)
				}
			}
			if tc.args == nil && placeholders != 4 {
				t.Errorf("%d placeholder warnings, want 4 (DC, Exchange URL, LDAP URL, CRL URL)", placeholders)
			}
			if notes := config.MigrationNotes(cfg); len(notes) != 0 {
				t.Errorf("a fresh config has migration notes: %v", notes)
			}
			md, err := os.ReadFile(p + ".md")
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range []string{"altSecurityIdentities", "Global Catalog", "uppercase", "computer account", "over LDAP", tc.realm} {
				if !strings.Contains(string(md), w) {
					t.Errorf("config.json.md lacks %q", w)
				}
			}
		})
	}
}

func TestConfigInitRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, "config", "init", p)
	if code != 1 || !strings.Contains(errOut, "exists; not overwriting") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if b, _ := os.ReadFile(p); string(b) != "{}" {
		t.Fatal("config.json was changed")
	}
	if _, err := os.Stat(p + ".md"); err == nil {
		t.Fatal("config.json.md written although config.json exists")
	}
}

func TestConfigInitRefusesAnInvalidSite(t *testing.T) {
	cases := [][]string{
		{"--domain", "corp.example"},     // realm not in upper case
		{"--dc", "DC1"},                  // not an FQDN
		{"--service-account", "EXCH01$"}, // computer account
		{"--exchange", `x","evil":"y`},   // JSON injection
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "config.json")
			code, _, errOut := run(t, append(append([]string{"config", "init"}, args...), p)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, errOut)
			}
			if _, err := os.Stat(p); err == nil {
				t.Fatal("file written")
			}
		})
	}
}

// TestConfigInitIsGeneratedFromTheDeclarations: config init writes every key
// declared with an init tag (and no other), and its notes name every declared
// key, so a new key needs only its declaration to reach both files.
func TestConfigInitIsGeneratedFromTheDeclarations(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	if code, out, errOut := run(t, "config", "init", p); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	cfg, _, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(p + ".md")
	if err != nil {
		t.Fatal(err)
	}
	written := 0
	for _, k := range config.Keys() {
		path := k.Name
		if k.Gateway {
			path = "customGatewaySettings." + k.Name
		}
		path = strings.Replace(path, "[].", "[0].", 1)
		if cfg.IsSet(path) != k.HasInit {
			t.Errorf("%s: written %v, declared with an init tag %v", k.Name, cfg.IsSet(path), k.HasInit)
		}
		if k.HasInit {
			written++
		}
		if !strings.Contains(string(md), "| `"+k.Name+"` |") {
			t.Errorf("config.json.md has no row for %s", k.Name)
		}
		if k.Fill != "" && !strings.Contains(string(md), k.Fill) {
			t.Errorf("config.json.md does not say what to fill in for %s", k.Name)
		}
	}
	if written < 20 {
		t.Errorf("only %d keys written", written)
	}
}
