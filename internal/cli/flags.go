package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// parseArgs parses args with fs and returns the positional arguments. Unlike
// flag.FlagSet.Parse, flags may follow arguments (`config check config.json
// -q`), as admins type them; an argument "--" ends the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		// Parse stops at the first non-flag, or after a "--" it consumes:
		// tell them apart by what came just before rest.
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// fileArg returns the one optional file argument of cmd: pos[0], or
// ./config.json when none is given.
func fileArg(cmd string, pos []string) (string, error) {
	switch len(pos) {
	case 0:
		return defaultConfig, nil
	case 1:
		return pos[0], nil
	}
	return "", usageError{cmd + " takes one file"}
}

// newFlagSet returns a flag set for one command whose -h prints the
// command's synopsis, what it does, and its flags.
func newFlagSet(name, synopsis, what string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		_, _ = fmt.Fprintf(stderr, "Usage: segmesh %s\n\n%s\n", synopsis, strings.TrimSpace(what))
		has := false
		fs.VisitAll(func(*flag.Flag) { has = true })
		if has {
			_, _ = fmt.Fprint(stderr, "\nFlags (before or after the arguments):\n")
			fs.PrintDefaults()
		}
	}
	return fs
}
