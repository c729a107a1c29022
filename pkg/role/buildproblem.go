package role

import (
	"slices"
	"strings"

	"github.com/segmesh/segmesh/pkg/config"
)

// Setting is a setting a role's constructor may refuse: the text its error
// holds when it is that setting's (Match), the setting's key, its value as
// written (empty when it may hold a secret) and the fix.
type Setting struct {
	// Match is text the constructor's error holds when the setting is the cause.
	Match string
	// Key is the setting's name in config.json.
	Key string
	// Value is the setting's value, shown with the problem; empty for one
	// that may hold a secret (a URL with a password).
	Value string
	// Fix says what to write instead.
	Fix string
}

// BuildProblem returns the configuration error a role's Validate reports
// for err, the error of the constructor its Start calls on the same
// configuration (identity's and ticket's Build): so `segmesh config check`,
// `segmesh run` before any role is built, and a reload refuse what the start
// would, with the constructor's own reason, and the rule stays in one place.
// A *config.Problem in err is returned as it is; else the problem is the
// first setting whose Match err's text holds, or the last one.
func BuildProblem(roleName string, err error, settings []Setting) config.Problem {
	p := config.ProblemOf("", "", err, "")
	if p.Key != "" {
		return p
	}
	s := settings[len(settings)-1]
	for _, c := range settings {
		if strings.Contains(err.Error(), c.Match) {
			s = c
			break
		}
	}
	p.Key, p.Value, p.Fix = s.Key, s.Value, s.Fix
	p.Message = err.Error() + ": the " + roleName + " role's start would stop"
	return p
}

// WithBuild returns a role's Validate from its rules' problems ps and
// build, its constructor's refusal as problems (BuildProblem): build runs
// only when ps holds no error, where it would repeat a refusal the rules
// already name in their own words.
func WithBuild(ps []config.Problem, build func() []config.Problem) []config.Problem {
	if slices.ContainsFunc(ps, func(p config.Problem) bool { return p.Severity == config.SeverityError }) {
		return ps
	}
	return append(ps, build()...)
}
