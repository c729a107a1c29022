package edge

import "golang.org/x/sys/unix"

// pollSupported reports whether Pings can be parked on this platform.
const pollSupported = true

// pollReady reports whether fd has something to read (data, end of stream
// or an error) without reading it.
func pollReady(fd uintptr) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}}
	n, err := unix.Poll(fds, 0)
	if err == unix.EINTR {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return n > 0 && fds[0].Revents != 0, nil
}

// pollHangup reports whether the peer of fd closed its side or the socket
// failed. Bytes waiting to be read (a pipelined request) are not a hangup:
// POLLRDHUP, unlike a peeking read, sees the FIN behind them.
func pollHangup(fd uintptr) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
	n, err := unix.Poll(fds, 0)
	if err == unix.EINTR {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0, nil
}
