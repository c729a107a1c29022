//go:build !race

package edge

// raceEnabled reports whether the race detector is on (it inflates allocations).
const raceEnabled = false
