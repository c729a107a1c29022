// Package cli implements segmesh's subcommands (run, roles, config check,
// config init, diagnose, lab) with injected stdout and stderr so their output
// is testable; cmd/segmesh only calls Main.
package cli
