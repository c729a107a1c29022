//go:build !linux

package safefile

// readOnlyFSOf reports false: the read-only mount exemption is made on
// Linux only (Kubernetes volumes), elsewhere the modes decide.
func readOnlyFSOf(string) bool { return false }
