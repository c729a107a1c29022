//go:build !race

package crl_test

// raceEnabled reports whether the race detector is on (it inflates allocations).
const raceEnabled = false
