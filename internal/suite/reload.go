package suite

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/safefile"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// DefaultReloadPoll is how often segmesh run reads config.json and the
// files it names to see whether they changed.
const DefaultReloadPoll = 2 * time.Second

// suiteLiveKeys are the settings run itself applies live.
var suiteLiveKeys = []string{"segmesh.telemetry.logLevel"}

// neverLive are the settings no reload can change: the sockets are open
// (a restart, or in Kubernetes a rollout, applies them).
var neverLive = []string{"segmesh.edge.listen", "segmesh.admin.listen", "segmesh.grpc.listen",
	"segmesh.telemetry.logFormat", "segmesh.telemetry.otlpEndpoint", "segmesh.telemetry.otlpInsecure"}

// applier is what the reload needs of the role group.
type applier interface {
	LiveKeys() map[string][]string
	ApplyConfig(ctx context.Context, next *config.Config, changed []string) error
}

// ReloadStatus is the reload's state as /status.json's "reload" section
// shows it.
type ReloadStatus struct {
	// LastAttempt is when config.json was last read for a reload.
	LastAttempt time.Time `json:"lastAttempt,omitzero"`
	// LastSuccess is when a configuration was last applied (the start
	// counts).
	LastSuccess time.Time `json:"lastSuccess"`
	// Trigger is what caused the last attempt: SIGHUP or file change.
	Trigger string `json:"trigger,omitempty"`
	// Refused holds the errors of the last edit when it was refused: the
	// running configuration is older than config.json.
	Refused []config.Problem `json:"refused,omitempty"`
	// Applied lists the settings the last reload changed live.
	Applied []string `json:"applied,omitempty"`
	// RestartPending lists the settings that differ from the running
	// process's and wait for a restart, each with the roles using it.
	RestartPending []string `json:"restartPending,omitempty"`
}

// reloader reloads config.json for segmesh run: the new file goes through
// LoadForRun and every role's Validate (`config check`'s pipeline); a
// broken one is refused whole and the running configuration stays; a good
// one is applied live where a role can (role.ConfigApplier, the log level)
// and every other changed setting is named as waiting for a restart.
//
// It polls (a SHA-256 of config.json and every file it names, every
// DefaultReloadPoll) instead of using inotify: fsnotify is not a
// dependency, Kubernetes replaces mounted ConfigMaps and Secrets by
// swapping the ..data symlink (an inotify watch on the file then sees
// nothing, one on the directory needs re-arming), and reading a handful of
// small files every two seconds costs nothing measurable and works the
// same on Linux, in containers and on Windows.
type reloader struct {
	path   string
	roles  []string
	log    *slog.Logger
	level  *slog.LevelVar
	group  applier
	adjust func(*config.Config)
	now    func() time.Time

	reloads metric.Int64Counter

	mu        sync.Mutex
	boot      *config.Config         // what the roles were built from
	bootFiles map[string]fileSetting // the content of the files boot names, as read at the start
	curFiles  map[string]fileSetting // the same for the configuration in force
	cur       *config.Config         // the configuration in force
	seen      [sha256.Size]byte
	state     ReloadStatus
	notes     []config.Problem // warnings and notes of the configuration in force
}

func newReloader(path string, roles []string, boot *config.Config, bootNotes []config.Problem, log *slog.Logger, level *slog.LevelVar,
	g applier, adjust func(*config.Config), m metric.Meter) (*reloader, error) {
	r := &reloader{path: path, roles: roles, log: log, level: level, group: g, adjust: adjust, now: time.Now,
		boot: boot, cur: boot, notes: bootNotes, bootFiles: fileSettings(boot)}
	r.curFiles = r.bootFiles
	r.state.LastSuccess = r.now()
	r.seen = fingerprint(path, boot)
	var err error
	if r.reloads, err = m.Int64Counter(telemetry.MetricConfigReloads,
		metric.WithDescription("reloads of config.json by result (applied, refused)")); err != nil {
		return nil, fmt.Errorf("reload: metrics: %w", err)
	}
	// Both series exist from the start, at 0: a counter series born at 1
	// loses its first increment in Prometheus's rate and increase.
	for _, result := range []string{"applied", "refused"} {
		r.reloads.Add(context.Background(), 0, metric.WithAttributes(attribute.String("result", result)))
	}
	_, err = m.Int64ObservableGauge(telemetry.MetricConfigReloadRefused,
		metric.WithDescription("1 while the last edit of config.json is refused and an older configuration runs"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			st := r.Status()
			o.Observe(int64(min(len(st.Refused), 1)))
			return nil
		}))
	if err != nil {
		return nil, fmt.Errorf("reload: metrics: %w", err)
	}
	_, err = m.Int64ObservableGauge(telemetry.MetricConfigLastReloadSuccess,
		metric.WithDescription("when config.json was last applied (Unix seconds)"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(r.Status().LastSuccess.Unix())
			return nil
		}))
	if err != nil {
		return nil, fmt.Errorf("reload: metrics: %w", err)
	}
	_, err = m.Int64ObservableGauge(telemetry.MetricConfigRestartPending,
		metric.WithDescription("settings changed in config.json that wait for a restart"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(len(r.Status().RestartPending)))
			return nil
		}))
	if err != nil {
		return nil, fmt.Errorf("reload: metrics: %w", err)
	}
	return r, nil
}

// Status returns a copy of the reload state.
func (r *reloader) Status() ReloadStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.state
	st.Refused = slices.Clone(st.Refused)
	st.Applied = slices.Clone(st.Applied)
	st.RestartPending = slices.Clone(st.RestartPending)
	return st
}

// Problems returns what /status shows of the configuration: the warnings
// of the one in force (the start's, then the last applied reload's), the
// refused edit's errors, and the settings waiting for a restart.
func (r *reloader) Problems() []config.Problem {
	st := r.Status()
	r.mu.Lock()
	out := slices.Clone(r.notes)
	r.mu.Unlock()
	for _, p := range st.Refused {
		p.Message = fmt.Sprintf("reload refused (%s, %s): %s; the configuration applied at %s stays in use",
			st.Trigger, st.LastAttempt.UTC().Format(time.RFC3339), p.Message, st.LastSuccess.UTC().Format(time.RFC3339))
		out = append(out, p)
	}
	for _, k := range st.RestartPending {
		out = append(out, config.Problem{Severity: config.SeverityWarning, Key: k,
			Message: "changed in config.json (or the content of the file it names), not applied: it takes a restart",
			Fix:     "restart segmesh (systemctl restart segmesh; in Kubernetes a rollout restart) to apply it, or put the old value back"})
	}
	return out
}

// Notes returns the lines /readyz adds: a refused reload does not make the
// gateway unready (it serves on the configuration it had, and taking it out
// of the balancer for a typo would turn an edit into an outage), but it is
// said there, on /status and in segmesh_config_reload_refused.
func (r *reloader) Notes() []string {
	st := r.Status()
	var out []string
	if len(st.Refused) > 0 {
		keys := make([]string, 0, len(st.Refused))
		for _, p := range st.Refused {
			keys = append(keys, p.Key)
		}
		out = append(out, fmt.Sprintf("config: reload refused at %s (%s); still running the configuration of %s; see /status",
			st.LastAttempt.UTC().Format(time.RFC3339), strings.Join(keys, ", "), st.LastSuccess.UTC().Format(time.RFC3339)))
	}
	if len(st.RestartPending) > 0 {
		out = append(out, "config: changed settings wait for a restart: "+strings.Join(st.RestartPending, ", "))
	}
	return out
}

// Poll reloads when config.json or a file it names changed since the last
// attempt. The same broken content is tried once, not at every poll.
func (r *reloader) Poll(ctx context.Context) {
	r.mu.Lock()
	cur := r.cur
	r.mu.Unlock()
	if fingerprint(r.path, cur) == r.seen {
		return
	}
	_ = r.Reload(ctx, "file change")
}

// Reload reads config.json now (SIGHUP, or Poll found a change) and
// applies it, or refuses it whole. It returns the refusal.
func (r *reloader) Reload(ctx context.Context, trigger string) error {
	r.mu.Lock()
	prev := r.cur
	r.state.LastAttempt, r.state.Trigger = r.now(), trigger
	r.mu.Unlock()
	before := fingerprint(r.path, prev)
	// Listener problems are weighed against the start's configuration,
	// whose listeners are the ones open: one an earlier reload added or
	// moved waits for a restart and is not open.
	next, problems, notes, err := r.load(r.boot)
	r.seen = fingerprint(r.path, cond(next != nil, next, prev))
	if fingerprint(r.path, prev) != before {
		// A file changed while it was being read (an editor's second save,
		// a ..data swap between config.json and a file it names): what was
		// loaded may be the older content, or a mix. Leave the new content
		// unseen so that the next poll reads it again, instead of marking
		// an edit as seen that is not in force.
		r.seen = [sha256.Size]byte{}
	}
	if err != nil {
		r.refuse(ctx, trigger, problems, err)
		return err
	}
	changed := diffConfig(prev, next)
	// A file rotated under the same path (a server certificate and key
	// renewed in place) is a change of its setting for a role that reads
	// that setting live.
	nextFiles := fileSettings(next)
	for key, now := range nextFiles {
		if was, ok := r.curFiles[key]; ok && was.sum != now.sum && !slices.ContainsFunc(changed, func(c change) bool { return c.Key == key }) {
			changed = append(changed, change{Key: key, Roles: now.roles})
		}
	}
	var live []string
	for _, c := range changed {
		if c.usedBy(r.roles) && r.isLive(c) {
			live = append(live, c.Key)
		}
	}
	// The roles get next with every setting that takes a restart kept at
	// the value they run on (the start's): a role that applies its settings
	// live reads them all from next, and would otherwise take along one the
	// process names as waiting for a restart (a setting another role of the
	// process reads and does not apply live).
	var kept, waiting []string
	for _, c := range diffConfig(r.boot, next) {
		if !r.isLive(c) {
			kept = append(kept, c.Key)
			if c.usedBy(r.roles) {
				waiting = append(waiting, c.Key)
			}
		}
	}
	toRoles := keepSettings(next, r.boot, kept)
	if problems := restartDependents(next, toRoles, r.boot, waiting, r.roles); len(problems) > 0 {
		err := fmt.Errorf("reload: %s: %w", strings.Join(waiting, ", "), config.ErrorOf(next.Path, problems))
		r.refuse(ctx, trigger, problems, err)
		return err
	}
	if err := r.group.ApplyConfig(ctx, toRoles, live); err != nil {
		// A role could not prepare the new settings though its Validate
		// passed (a file, a KDC refusing the new password): the group
		// committed none, so every role keeps its old settings. Said as a
		// refusal, and tried again at the next change or SIGHUP.
		r.refuse(ctx, trigger, []config.Problem{{Severity: config.SeverityError, Key: "(reload)",
			Message: err.Error(), Fix: "correct the setting the error names, or restart segmesh"}}, err)
		return err
	}
	if slices.Contains(live, "segmesh.telemetry.logLevel") {
		lv, _ := telemetry.ParseLevel(next.Segmesh.Telemetry.LogLevel) // Load checked it
		r.level.Set(lv)
	}
	var pending []string
	for _, c := range diffConfig(r.boot, next) {
		if c.usedBy(r.roles) && !r.isLive(c) {
			pending = append(pending, c.Key)
		}
	}
	// A file rotated under the same path (the admin token, a server or
	// role-to-role certificate, a CA file) is read at the start only: said
	// as waiting for a restart, not passed over as a reload that changed
	// nothing while the old content stays in use. A role that reads the
	// setting live has read the new content.
	for _, k := range rotatedFiles(r.bootFiles, next, r.roles) {
		if !slices.Contains(pending, k) && !r.isLive(change{Key: k, Roles: nextFiles[k].roles}) {
			pending = append(pending, k)
		}
	}
	r.mu.Lock()
	r.cur, r.notes, r.curFiles = next, notes, nextFiles
	r.state.Refused, r.state.Applied, r.state.RestartPending = nil, live, pending
	r.state.LastSuccess = r.now()
	r.mu.Unlock()
	r.reloads.Add(ctx, 1, metric.WithAttributes(attribute.String("result", "applied")))
	r.log.Info("configuration reloaded", "trigger", trigger, "file", r.path, "applied", live)
	if len(pending) > 0 {
		r.log.Warn("configuration changed settings that take a restart; they are not applied", "keys", pending)
	}
	return nil
}

// isLive reports whether a setting changes without a restart: every role
// of this process that uses it (its "roles" tags) applies it live. A
// setting two roles read (the service account's password: ticket and
// identity) is not live while one of them would keep the old value.
func (r *reloader) isLive(c change) bool {
	if slices.Contains(neverLive, c.Key) {
		return false
	}
	if slices.Contains(suiteLiveKeys, c.Key) {
		return true
	}
	live := r.group.LiveKeys()
	users := 0
	for _, role := range r.roles {
		if !c.usedBy([]string{role}) {
			continue
		}
		users++
		if !slices.Contains(live[role], c.Key) {
			return false
		}
	}
	return users > 0
}

// load runs `config check`'s pipeline on config.json: the new
// configuration and its warnings and notes, or the errors refusing it.
func (r *reloader) load(running *config.Config) (*config.Config, []config.Problem, []config.Problem, error) {
	next, report, err := LoadForRun(r.path, r.roles, r.log)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return nil, ce.Problems, nil, err
		}
		return nil, []config.Problem{{Severity: config.SeverityError, Key: "(file)", Message: err.Error(),
			Fix: "correct config.json (segmesh config check names the problem)"}}, nil, err
	}
	if r.adjust != nil {
		r.adjust(next)
	}
	problems := forReload(Validate(next, report, r.roles), running, r.roles, machineEnv)
	if err := config.ErrorOf(next.Path, problems); err != nil {
		var errs []config.Problem
		for _, p := range problems {
			if p.Severity == config.SeverityError {
				errs = append(errs, p)
			}
		}
		return nil, errs, nil, err
	}
	notes := append(append(slices.Clone(report.Problems), problems...), config.MigrationNotes(next)...)
	return next, nil, notes, nil
}

func (r *reloader) refuse(ctx context.Context, trigger string, problems []config.Problem, err error) {
	r.mu.Lock()
	r.state.Refused = problems
	r.mu.Unlock()
	r.reloads.Add(ctx, 1, metric.WithAttributes(attribute.String("result", "refused")))
	r.log.Error("configuration reload refused; the running configuration stays in use", "trigger", trigger, "file", r.path, "err", err)
	for _, p := range problems {
		r.log.Error("config error", "key", p.Key, "problem", p.Message, "fix", p.Fix)
	}
}

func cond[T any](c bool, a, b T) T {
	if c {
		return a
	}
	return b
}

// fingerprint hashes config.json and every file c names; a missing file
// hashes as its name alone.
func fingerprint(path string, c *config.Config) [sha256.Size]byte {
	h := sha256.New()
	files := []string{path}
	if c != nil {
		files = append(files, filesOf(c)...)
	}
	for _, f := range files {
		_, _ = io.WriteString(h, f+"\x00")
		hashFile(h, f)
		_, _ = io.WriteString(h, "\x00")
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// hashFile writes into h up to 64 MiB of the regular file p, and nothing
// when p cannot be opened or is not a regular file. The file is opened
// without blocking and checked on the open descriptor: the callers list
// regular files by path (isRegular), and a file swapped for a FIFO (a plain
// open blocks until a writer comes) or a device (a link to /dev/zero) after
// that check must not block or feed the poll and the reload without end.
func hashFile(h io.Writer, p string) {
	fh, _, err := safefile.Open(p)
	if err != nil {
		return
	}
	defer func() { _ = fh.Close() }()
	_, _ = io.Copy(h, io.LimitReader(fh, 64<<20))
}

func isRegular(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
