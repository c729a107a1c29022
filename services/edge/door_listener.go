package edge

import (
	"crypto/tls"
	"net"
	"sync"
)

// parkListener is the device listener the http.Server serves: the TLS
// listener's new connections, and the device connections of parked Pings
// once answered, so that the server reads their next request. A returned
// *tls.Conn has completed its handshake; the server's handshake call
// returns at once and ConnContext finds the connection's peer record.
type parkListener struct {
	net.Listener

	accepted chan acceptResult
	back     chan net.Conn
	done     chan struct{}
	once     sync.Once
	pump     sync.Once
}

type acceptResult struct {
	c   net.Conn
	err error
}

func newParkListener(ln net.Listener) *parkListener {
	return &parkListener{Listener: ln, accepted: make(chan acceptResult), back: make(chan net.Conn), done: make(chan struct{})}
}

// Accept returns the next new or returned connection.
func (l *parkListener) Accept() (net.Conn, error) {
	l.pump.Do(func() { go l.acceptLoop() })
	select {
	case r := <-l.accepted:
		return r.c, r.err
	case c := <-l.back:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// acceptLoop feeds Accept from the TLS listener until it is closed.
func (l *parkListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		select {
		case l.accepted <- acceptResult{c, err}:
		case <-l.done:
			if c != nil {
				_ = c.Close()
			}
			return
		}
	}
}

// giveBack hands c to the server; false when the listener is closed (the
// caller closes c).
func (l *parkListener) giveBack(c *tls.Conn) bool {
	if l == nil {
		return false
	}
	select {
	case l.back <- c:
		return true
	case <-l.done:
		return false
	}
}

// Close stops accepting; returned connections not yet taken are refused.
func (l *parkListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}
