//go:build !windows

package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestServiceCommand: `segmesh service` is listed, checks its subcommand,
// and off Windows says where the Linux service comes from.
func TestServiceCommand(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		code        int
		out, errOut string
	}{
		{[]string{"help"}, 0, "segmesh service install|uninstall", ""},
		{[]string{"service"}, 2, "", "service needs a subcommand: install or uninstall"},
		{[]string{"service", "start"}, 2, "", `unknown subcommand "start"`},
		{[]string{"service", "-h"}, 0, "Windows Server only", ""},
		{[]string{"service", "install", "--config", "x.json"}, 1, "", "systemd unit segmesh.service"},
		{[]string{"service", "uninstall"}, 1, "", "Windows services exist only on Windows"},
		{[]string{"service", "install", "--bogus"}, 1, "", "flag provided but not defined: -bogus"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(context.Background(), tc.args, &out, &errOut)
			if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.errOut) {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s\nwant stdout with %q, stderr with %q",
					code, tc.code, out.String(), errOut.String(), tc.out, tc.errOut)
			}
		})
	}
}
