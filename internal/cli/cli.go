package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/segmesh/segmesh/internal/suite"
	"github.com/segmesh/segmesh/pkg/role"
)

const usage = `segmesh — a Kerberos Constrained Delegation email gateway (SEG V2 with KCD, as services)

Usage:
  segmesh run [--config config.json] [--roles all|crl,identity,ticket,edge]
  segmesh roles
  segmesh version
  segmesh config check [config.json]
  segmesh config init [config.json]
  segmesh config encrypt [config.json]
  segmesh diagnose [--config config.json] --cert user.pem [--key user.key] [--chain chain.pem] [--spn HTTP/...] [--json]
  segmesh service install|uninstall [--config config.json]   (Windows)

Every command reads ./config.json unless given another file.

Run 'segmesh COMMAND -h' for a command's flags.
`

// Main runs one command and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		_, _ = fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = runCmd(ctx, args[1:], stderr)
	case "roles":
		err = rolesCmd(stdout)
	case "version", "--version", "-version":
		versionCmd(stdout)
	case "config":
		err = configCmd(args[1:], stdout, stderr)
	case "diagnose":
		err = diagnoseCmd(ctx, args[1:], stdout, stderr)
	case "service":
		err = serviceCmd(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		_, _ = fmt.Fprint(stdout, usage)
		return 0
	default:
		_, _ = fmt.Fprintf(stderr, "segmesh: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		_, _ = fmt.Fprintf(stderr, "segmesh: %v\n", err)
		return 2
	case errors.Is(err, errReported):
		return 1
	default:
		_, _ = fmt.Fprintf(stderr, "segmesh: %v\n", err)
		return 1
	}
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// errReported means the command already printed why it failed.
var errReported = errors.New("reported")

// defaultConfig is the file run, config check, config encrypt and diagnose
// read when none is named.
const defaultConfig = "config.json"

func runCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("run", "run [--config config.json] [--roles all|crl,identity,ticket,edge]",
		"Runs the roles until SIGTERM (then drains). Reads ./config.json unless --config names another file.", stderr)
	cfgPath := fs.String("config", defaultConfig, "config.json (SEG's settings plus segmesh's section)")
	roles := fs.String("roles", "all", "roles to run in this process: all, or a comma-separated list of "+strings.Join(role.Order, ", "))
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("run takes no arguments, got %q (did you mean --config %s?)", pos, pos[0])}
	}
	if _, err := role.ParseRoles(*roles, suite.Constructors()); err != nil {
		return err
	}
	if _, err := os.Stat(*cfgPath); err != nil {
		// Running on the defaults answered 503 to every device: the mistake
		// a service unit without --config makes. Say so instead.
		return fmt.Errorf("run: no configuration at %s (%w): pass --config /path/to/config.json, or write one with 'segmesh config init'", *cfgPath, err)
	}
	o := suite.Options{ConfigPath: *cfgPath, Roles: *roles, Stderr: stderr}
	if ran, err := runAsService(ctx, o); ran {
		return err
	}
	return suite.Run(ctx, o)
}

func rolesCmd(stdout io.Writer) error {
	desc := map[string]string{
		role.CRL:      "fetches CRLs from the HTTP distribution points on a timer and streams verified snapshots to edges",
		role.Identity: "maps a client certificate to the user's UPN (LDAP userCertificate mapping, else the certificate SAN)",
		role.Ticket:   "holds the KCD service account; gets service tickets by S4U2Self + S4U2Proxy and caches them",
		role.Edge:     "terminates device mTLS, checks revocation, adds Authorization: Negotiate and proxies to Exchange",
	}
	known := suite.Constructors()
	for _, n := range role.Order {
		state := ""
		if _, ok := known[n]; !ok {
			state = " (not built into this binary)"
		}
		_, _ = fmt.Fprintf(stdout, "%-9s %s%s\n", n, desc[n], state)
	}
	return nil
}

// versionCmd prints the module version and VCS revision the binary was built
// from (as the Go toolchain recorded them) and the Go version.
func versionCmd(stdout io.Writer) {
	v, rev := "(unknown)", ""
	goVersion := runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		v = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = " " + s.Value
			}
		}
	}
	_, _ = fmt.Fprintf(stdout, "segmesh %s%s %s %s/%s\n", v, rev, goVersion, runtime.GOOS, runtime.GOARCH)
}
