//go:build !windows

package cli

import (
	"context"
	"errors"
	"io"

	"github.com/segmesh/segmesh/internal/suite"
)

// errNotWindows answers `segmesh service` off Windows.
var errNotWindows = errors.New("service: Windows services exist only on Windows; on Linux install the .deb or .rpm (systemd unit segmesh.service)")

func installService(string, io.Writer) error { return errNotWindows }

func uninstallService(io.Writer) error { return errNotWindows }

// runAsService runs o under the Windows service control manager when the
// process was started by it; elsewhere it reports false.
func runAsService(context.Context, suite.Options) (bool, error) { return false, nil }
