//go:build !linux

package edge

// pollSupported reports whether Pings can be parked on this platform: only
// Linux has POLLRDHUP; elsewhere Pings go through the reverse proxy.
const pollSupported = false

func pollReady(uintptr) (bool, error) { return false, nil }

func pollHangup(uintptr) (bool, error) { return false, nil }
