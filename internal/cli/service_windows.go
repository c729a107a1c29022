//go:build windows

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/segmesh/segmesh/internal/suite"
)

// serviceName is segmesh's name in the service control manager and the
// event log.
const serviceName = "segmesh"

// installService registers segmesh as an automatic-start service running
// `segmesh run --config cfg` and an event-log source for its start and stop
// messages. Not verified here: the service control manager does not run
// under wine (README).
func installService(cfg string, stdout io.Writer) error {
	if _, err := os.Stat(cfg); err != nil {
		return fmt.Errorf("service install: no configuration at %s (%w): write one with 'segmesh config init %s'", cfg, err, cfg)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("service install: %w", err)
	}
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service install: connect to the service control manager (run as Administrator): %w", err)
	}
	defer func() { _ = m.Disconnect() }()
	if s, err := m.OpenService(serviceName); err == nil {
		_ = s.Close()
		return fmt.Errorf("service install: the service %s exists already: 'segmesh service uninstall' first", serviceName)
	}
	s, err := m.CreateService(serviceName, exe, mgr.Config{
		DisplayName: "segmesh KCD email gateway", StartType: mgr.StartAutomatic,
		Description: "Kerberos Constrained Delegation email gateway (segmesh run)",
	}, "run", "--config", cfg)
	if err != nil {
		return fmt.Errorf("service install: %w", err)
	}
	defer func() { _ = s.Close() }()
	// Restart after a failure, as systemd's Restart=on-failure does.
	_ = s.SetRecoveryActions([]mgr.RecoveryAction{{Type: mgr.ServiceRestart, Delay: 5 * time.Second}}, 86400)
	if err := eventlog.InstallAsEventCreate(serviceName, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		_, _ = fmt.Fprintf(stdout, "event log source not registered (%v); the log is in %s\n", err, logPath(cfg))
	}
	_, _ = fmt.Fprintf(stdout, "installed the service %s: segmesh run --config %s; start it with 'sc start %s'; log in %s\n",
		serviceName, cfg, serviceName, logPath(cfg))
	return nil
}

// uninstallService removes the service and its event-log source.
func uninstallService(stdout io.Writer) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service uninstall: connect to the service control manager (run as Administrator): %w", err)
	}
	defer func() { _ = m.Disconnect() }()
	s, err := m.OpenService(serviceName)
	if err != nil {
		return fmt.Errorf("service uninstall: no service %s: %w", serviceName, err)
	}
	defer func() { _ = s.Close() }()
	if err := s.Delete(); err != nil {
		return fmt.Errorf("service uninstall: %w", err)
	}
	_ = eventlog.Remove(serviceName)
	_, _ = fmt.Fprintf(stdout, "removed the service %s\n", serviceName)
	return nil
}

// logPath is the service's log file, beside the configuration.
func logPath(cfg string) string { return filepath.Join(filepath.Dir(cfg), "segmesh.log") }

// runAsService runs o under the service control manager when it started
// this process: the log goes to segmesh.log beside the configuration (a
// service has no console), start and stop are written to the event log,
// and Stop or Shutdown cancel the run, which drains as SIGTERM does.
func runAsService(ctx context.Context, o suite.Options) (bool, error) {
	is, err := svc.IsWindowsService()
	if err != nil || !is {
		return false, err
	}
	f, err := os.OpenFile(logPath(o.ConfigPath), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return true, fmt.Errorf("service: open the log: %w", err)
	}
	defer func() { _ = f.Close() }()
	o.Stderr = f
	h := &handler{ctx: ctx, opts: o}
	if el, err := eventlog.Open(serviceName); err == nil {
		h.events = el
		defer func() { _ = el.Close() }()
	}
	if err := svc.Run(serviceName, h); err != nil {
		return true, fmt.Errorf("service: %w", err)
	}
	return true, h.err
}

// handler is the svc.Handler around suite.Run.
type handler struct {
	ctx    context.Context
	opts   suite.Options
	events *eventlog.Log
	err    error
}

// Execute runs the roles until the service control manager says stop.
func (h *handler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- suite.Run(ctx, h.opts) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	h.info("segmesh started with " + h.opts.ConfigPath)
	for {
		select {
		case err := <-done:
			h.err = err
			if err != nil && !errors.Is(err, context.Canceled) {
				h.error("segmesh stopped: " + err.Error())
				return true, 1
			}
			return false, 0
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				// Drain as on SIGTERM: not ready, finish in-flight work.
				status <- svc.Status{State: svc.StopPending, WaitHint: 150_000}
				cancel()
				h.info("segmesh stopping: draining")
			}
		}
	}
}

func (h *handler) info(msg string) {
	if h.events != nil {
		_ = h.events.Info(1, msg)
	}
}

func (h *handler) error(msg string) {
	if h.events != nil {
		_ = h.events.Error(1, msg)
	}
}
