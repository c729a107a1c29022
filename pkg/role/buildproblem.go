package role

import (
	"slices"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/problem"
)

// Setting is a setting a role's constructor may refuse: its key, its value
// as written (empty when it may hold a secret) and the fix.
type Setting struct {
	// Key is the setting's name in config.json, the Key of the
	// *problem.SettingError the constructor refuses it with.
	Key string
	// Value is the setting's value, shown with the problem; empty for one
	// that may hold a secret (a URL with a password).
	Value string
	// Fix says what to write instead.
	Fix string
}

// BuildProblems returns the configuration errors a role's Validate reports
// for err, the error of the constructor its Start calls on the same
// configuration (identity's and ticket's Build): so `segmesh config check`,
// `segmesh run` before any role is built, and a reload refuse what the start
// would, with the constructor's own reason, and the rule stays in one place.
// A *config.Problem in err is returned as an error (the start stops on it
// whatever its severity), and so is each *problem.SettingError in err: a
// problem on its Key, with the value and fix settings give that key (the
// last setting's fix for a key they do not list): the type says which
// setting, never the text, so a reworded error or a value quoting another
// key stays where it belongs. An err with neither is a problem on the last
// setting, the role's fallback.
func BuildProblems(roleName string, err error, settings []Setting) []config.Problem {
	var out []config.Problem
	if p := config.ProblemOf("", "", err, ""); p.Key != "" {
		// The constructor refused with it, so the start stops whatever
		// severity it was written with.
		p.Severity = config.SeverityError
		out = append(out, p)
	}
	fallback := settings[len(settings)-1]
	on := func(key, msg string) config.Problem {
		s := Setting{Key: key, Fix: fallback.Fix}
		if i := slices.IndexFunc(settings, func(s Setting) bool { return s.Key == key }); i >= 0 {
			s = settings[i]
		}
		return config.Problem{Severity: config.SeverityError, Key: s.Key, Value: s.Value, Fix: s.Fix, Err: err,
			Message: msg + ": the " + roleName + " role's start would stop"}
	}
	for _, se := range problem.SettingErrors(err) {
		if p := on(se.Key, se.Error()); !slices.ContainsFunc(out, p.Same) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		out = append(out, on(fallback.Key, err.Error()))
	}
	return out
}

// WithBuild returns a role's Validate from its rules' problems ps and
// build, its constructor's refusal as problems (BuildProblems): build runs
// only when ps holds no error, where it would repeat a refusal the rules
// already name in their own words.
func WithBuild(ps []config.Problem, build func() []config.Problem) []config.Problem {
	if slices.ContainsFunc(ps, func(p config.Problem) bool { return p.Severity == config.SeverityError }) {
		return ps
	}
	return append(ps, build()...)
}
