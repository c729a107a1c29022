//go:build !linux

package safefile

// hasAccessACL reports false: ACLs are read on Linux only, elsewhere the
// modes decide.
func hasAccessACL(string) (bool, error) { return false, nil }
