package cli

import (
	"fmt"
	"io"
	"path/filepath"
)

// serviceUsage is `segmesh service`'s help.
const serviceUsage = `Usage: segmesh service install|uninstall [--config config.json]

Windows Server only: install registers 'segmesh run --config FILE' as the
automatic-start Windows service "segmesh" (log in segmesh.log beside the
configuration); uninstall removes it. Stop the service to drain it. On Linux
the .deb/.rpm install the systemd unit segmesh.service instead.
`

// serviceCmd is `segmesh service install|uninstall`.
func serviceCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"service needs a subcommand: install or uninstall"}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		_, _ = fmt.Fprint(stdout, serviceUsage)
		return nil
	case "install", "uninstall":
	default:
		return usageError{fmt.Sprintf("service: unknown subcommand %q (install or uninstall)", args[0])}
	}
	fs := newFlagSet("service "+args[0], "service "+args[0]+" [--config config.json]",
		"Registers (install) or removes (uninstall) the Windows service segmesh.", stderr)
	cfgPath := fs.String("config", defaultConfig, "config.json the service runs with (made absolute)")
	if _, err := parseArgs(fs, args[1:]); err != nil {
		return err
	}
	abs, err := filepath.Abs(*cfgPath)
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	if args[0] == "install" {
		return installService(abs, stdout)
	}
	return uninstallService(stdout)
}
