//go:build lab && race

package segproc

// raceEnabled reports whether this test binary runs under the race
// detector; segmesh is then built with -race too.
const raceEnabled = true
