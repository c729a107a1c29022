package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
  segmesh diagnose --config config.json --cert user.pem [--key user.key] [--chain chain.pem] [--spn HTTP/...] [--json]
  segmesh lab up|down|status|env|revoke USER|fault ...

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
	case "lab":
		err = labCmd(ctx, args[1:], stdout, stderr)
	case "diagnose":
		err = diagnoseCmd(ctx, args[1:], stdout, stderr)
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

func runCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config.json (SEG's settings plus segmesh's section); empty runs on the defaults")
	roles := fs.String("roles", "all", "roles to run in this process: all, or a comma-separated list of "+strings.Join(role.Order, ", "))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("run takes no arguments, got %q (did you mean --config %s?)", fs.Args(), fs.Arg(0))}
	}
	return suite.Run(ctx, suite.Options{ConfigPath: *cfgPath, Roles: *roles, Stderr: stderr})
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
