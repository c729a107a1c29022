package crl

import (
	"errors"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/crl/store"
	"github.com/segmesh/segmesh/pkg/safefile"
)

// stateDirProblems refuses the state directory dir when another local
// user could change what it holds (safefile.CheckDir: others, or a group
// the process is not in, may write it, kept/, a record, or a directory
// above it; or another user owns one of them; or, not made yet, where it
// would be made others may write): that user deletes a floor, or plants an
// older CRL's record, and after the next restart a revoked certificate is
// good again. Validate calls it, so the start (`segmesh run` validates
// before any role starts), every reload and `config check` refuse alike.
// An empty dir (no disk copy) has nothing to check.
func stateDirProblems(dir string) []config.Problem {
	if dir == "" {
		return nil
	}
	err := safefile.CheckDir(dir)
	if err == nil {
		return nil
	}
	p := config.Problem{Severity: config.SeverityError, Key: KeyStateDir, Value: dir, Err: err,
		Message: "cannot be used: " + err.Error(), Fix: "name a directory segmesh's user owns and only it writes (mkdir -m 0700)"}
	if e, ok := errors.AsType[*safefile.ExposedError](err); ok {
		// "another local user could change the CRLs kept in it: <finding>"
		p.Message = e.Explain(dir, "change the CRLs kept in") + " (remove a floor or plant an older CRL: after a restart a revoked certificate is good again)"
		p.Fix = e.Fix
	}
	return []config.Problem{p}
}

// warnEmptyStateDir logs a warning when the state directory holds no CRL
// at the start: a first start, or segmesh.crl.stateDir changed while the
// process was down (or its contents lost), which the role cannot tell
// apart: it writes nothing outside the state directory, and in Kubernetes
// that volume is all it has. The floors and kept CRLs of an earlier run
// are then not in force, so a distribution point that lags, or a replayed
// older CRL, decides until a newer one arrives; refusing to start would
// refuse every first start and every replaced volume. /status
// (stateDirEmptyAtStart) and segmesh_crl_state_dir_empty_at_start show
// it too, for the life of the process: an unsafe state is never in the
// log only. No /readyz note: it would stand on every first start's page
// for the life of the process, where notes are things to act on.
func (s *Service) warnEmptyStateDir() {
	empty, err := store.New(s.cfg.StateDir).Empty()
	if err != nil {
		s.log.Warn("crl state directory unreadable at the start", "dir", s.cfg.StateDir, "setting", KeyStateDir, "err", err)
		return
	}
	s.emptyAtStart.Store(empty)
	if empty {
		s.log.Warn("crl state directory holds no CRL: a first start, or segmesh.crl.stateDir changed or its contents lost; no floor of an earlier run is in force. If the setting changed, stop, copy the previous directory's contents (kept/ included) here, and start again (docs/operations.md, Moving the state directory)",
			"dir", s.cfg.StateDir, "setting", KeyStateDir)
	}
}
