// Package segproc runs segmesh against the lab for the reliability and
// security tests (test/reliability, test/security): it builds the segmesh
// binary once per test binary, writes a config.json derived from the lab's
// (every listener on port 0, state in the test's directory), starts segmesh
// as a child process, learns its edge and admin addresses from its log, and
// gives HTTPS clients holding a lab user's device certificate.
//
// Everything but this file is behind the `lab` build tag, as in
// internal/labenv:
//
//	lab := labenv.Up(t)
//	cfg := segproc.LabConfig(t, lab)
//	p := segproc.Start(t, segproc.WriteConfig(t, t.TempDir(), cfg))
//	resp, err := p.Client(t, lab, "alice").Get(p.URL("/Microsoft-Server-ActiveSync?Cmd=Ping"))
package segproc
