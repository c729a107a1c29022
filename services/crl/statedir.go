package crl

import "github.com/segmesh/segmesh/pkg/crl/store"

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
		s.log.Warn("crl state directory unreadable at the start", "dir", s.cfg.StateDir, "setting", "segmesh.crl.stateDir", "err", err)
		return
	}
	s.emptyAtStart.Store(empty)
	if empty {
		s.log.Warn("crl state directory holds no CRL: a first start, or segmesh.crl.stateDir changed or its contents lost; no floor of an earlier run is in force. If the setting changed, stop, copy the previous directory's contents (kept/ included) here, and start again (docs/operations.md, Moving the state directory)",
			"dir", s.cfg.StateDir, "setting", "segmesh.crl.stateDir")
	}
}
