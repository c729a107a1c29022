package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/segmesh/segmesh/internal/suite"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
)

// configUsage is what `segmesh config -h` prints.
const configUsage = `Usage:
  segmesh config check [-q] [--roles R] [config.json]  the loader run uses: every problem with its fix; writes nothing
  segmesh config init [flags] [config.json]   a starting config.json (and config.json.md) for a new site
  segmesh config encrypt [config.json]        encrypt the secrets written with the .plaintext suffix, now

Each reads ./config.json unless given another file. 'segmesh config SUBCOMMAND -h' for its flags.
`

func configCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"config needs a subcommand: check, init or encrypt"}
	}
	switch args[0] {
	case "check":
		return configCheck(args[1:], stdout, stderr)
	case "init":
		return configInit(args[1:], stdout, stderr)
	case "encrypt":
		return configEncrypt(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		_, _ = fmt.Fprint(stdout, configUsage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown config subcommand %q: want check, init or encrypt", args[0])}
}

// configCheck runs the loader `run` uses, writes nothing, and prints the
// effective configuration (secrets masked), what differs from the defaults,
// and every problem. It fails when there is an error.
func configCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("config check", "config check [-q] [--strict] [--json] [--roles R] [config.json]",
		"Runs the loader 'segmesh run' uses, writes nothing, and prints the effective configuration (secrets masked), what differs from the defaults and every problem with its fix. Exit 1 on errors (and on warnings with --strict).", stderr)
	quiet := fs.Bool("q", false, "print only the problems")
	strict := fs.Bool("strict", false, "fail (exit 1) on warnings too, for CI and Ansible")
	asJSON := fs.Bool("json", false, "print {config, ok, errors, warnings, ignored, problems[]} as JSON (schema in docs/operations.md)")
	rolesFlag := fs.String("roles", "all", "check as `segmesh run --roles` would with these roles: the listeners they open and the segmesh.peers addresses of the roles run elsewhere")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	var roles []string // nil: every role in this process
	if r := strings.TrimSpace(*rolesFlag); r != "" && r != "all" {
		if roles, err = role.ParseRoles(r, suite.Constructors()); err != nil {
			return usageError{err.Error()}
		}
	}
	path, err := fileArg("config check", pos)
	if err != nil {
		return err
	}
	cfg, report, err := config.LoadFor(path, roles) // the secrets those roles open, as run
	if report == nil {
		return err
	}
	if cfg != nil {
		report.Problems = append(report.Problems, suite.ForCheck(suite.Validate(cfg, report, roles))...)
		report.Problems = append(report.Problems, config.MigrationNotes(cfg)...)
	}
	ne, nw, ni := len(report.Errors()), len(report.Warnings()), len(report.Ignored())
	failed := ne > 0 || *strict && nw > 0
	if *asJSON {
		if err := writeCheckJSON(stdout, path, report, ne, nw, ni, !failed); err != nil {
			return err
		}
		if failed {
			return errReported
		}
		return nil
	}
	_, _ = fmt.Fprintf(stdout, "config: %s\n", path)
	if cfg != nil && !*quiet {
		eff, _ := json.MarshalIndent(effective(cfg), "", "  ")
		_, _ = fmt.Fprintf(stdout, "\neffective configuration (secrets masked):\n%s\n", eff)
		defaults, diff := fromDefaults(cfg)
		_, _ = fmt.Fprintf(stdout, "\ndefaults in force (not written in the file) (%d):\n", len(defaults))
		for _, d := range defaults {
			_, _ = fmt.Fprintf(stdout, "  %s\n", d)
		}
		_, _ = fmt.Fprintf(stdout, "\ndiffers from the defaults (%d):\n", len(diff))
		for _, d := range diff {
			_, _ = fmt.Fprintf(stdout, "  %s\n", d)
		}
	}
	_, _ = fmt.Fprintf(stdout, "\nproblems (%d):\n", len(report.Problems))
	for _, p := range report.Problems {
		_, _ = fmt.Fprintf(stdout, "  %s\n", p)
	}
	_, _ = fmt.Fprintf(stdout, "\nresult: %d error(s), %d warning(s), %d ignored\n", ne, nw, ni)
	if failed {
		if ne == 0 {
			_, _ = fmt.Fprintln(stdout, "failed: --strict fails on warnings")
		}
		return errReported
	}
	return nil
}

// checkProblemJSON is one problem in `config check --json`.
type checkProblemJSON struct {
	Severity string `json:"severity"`
	Key      string `json:"key"`
	Value    string `json:"value,omitempty"`
	Message  string `json:"message"`
	Fix      string `json:"fix,omitempty"`
}

// writeCheckJSON prints config check's verdict as one JSON object.
func writeCheckJSON(w io.Writer, path string, report *config.Report, ne, nw, ni int, ok bool) error {
	out := struct {
		Config   string             `json:"config"`
		OK       bool               `json:"ok"`
		Errors   int                `json:"errors"`
		Warnings int                `json:"warnings"`
		Ignored  int                `json:"ignored"`
		Problems []checkProblemJSON `json:"problems"`
	}{Config: path, OK: ok, Errors: ne, Warnings: nw, Ignored: ni, Problems: []checkProblemJSON{}}
	for _, p := range report.Problems {
		out.Problems = append(out.Problems, checkProblemJSON{Severity: p.Severity.String(), Key: p.Key, Value: p.Value, Message: p.Message, Fix: p.Fix})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// effectiveView is what config check prints: the file's settings plus the
// typed custom gateway settings, with secrets masked by their own type.
type effectiveView struct {
	*config.Config
	Gateway map[string]any `json:"customGatewaySettings"`
}

// effective returns c as it is in force: the install directory and the
// key file as resolved, the custom gateway settings typed.
func effective(c *config.Config) effectiveView {
	cp := *c
	if cp.Segmesh.InstallDir == "" {
		cp.Segmesh.InstallDir = c.BaseDir
	}
	if cp.Segmesh.SecretKeyFile == "" && c.Path != "" {
		cp.Segmesh.SecretKeyFile = c.KeyFile()
	}
	return effectiveView{Config: &cp, Gateway: c.Gateway.Values()}
}

// fromDefaults lists "key: value" for every setting config.json does not
// write (its default is in force), and "key: value (default: d)" for every
// written setting whose value differs from Default().
func fromDefaults(c *config.Config) (defaults, diff []string) {
	d := config.Default()
	a := flatten(effective(c))
	b := flatten(effective(&d))
	for k, v := range a {
		if !c.IsSet(k) {
			defaults = append(defaults, fmt.Sprintf("%s: %s", k, v))
			continue
		}
		if dv, ok := b[k]; !ok || dv != v {
			if !ok {
				dv = "unset"
			}
			diff = append(diff, fmt.Sprintf("%s: %s (default: %s)", k, v, dv))
		}
	}
	sort.Strings(defaults)
	sort.Strings(diff)
	return defaults, diff
}

// flatten marshals v to JSON and returns its leaves as dotted paths.
func flatten(v any) map[string]string {
	raw, _ := json.Marshal(v)
	var m any
	_ = json.Unmarshal(raw, &m)
	out := map[string]string{}
	var walk func(prefix string, x any)
	walk = func(prefix string, x any) {
		switch t := x.(type) {
		case map[string]any:
			for k, v := range t {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, v)
			}
		default:
			b, _ := json.Marshal(t)
			out[prefix] = string(b)
		}
	}
	walk("", m)
	return out
}
