package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// udpIdle is how long a UDP client mapping lives without traffic.
const udpIdle = 30 * time.Second

// forward runs one forwarder per "tcp:LISTEN=TARGET" or "udp:LISTEN=TARGET"
// argument until ctx ends.
func forward(ctx context.Context, log *slog.Logger, specs []string) error {
	if len(specs) == 0 {
		return errors.New("fwd: need tcp:ADDR=TARGET or udp:ADDR=TARGET")
	}
	var closers []io.Closer
	errc := make(chan error, len(specs))
	for _, spec := range specs {
		proto, rest, ok := strings.Cut(spec, ":")
		listen, target, ok2 := strings.Cut(rest, "=")
		if !ok || !ok2 {
			return fmt.Errorf("fwd: bad spec %q", spec)
		}
		switch proto {
		case "tcp":
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("fwd: %w", err)
			}
			closers = append(closers, ln)
			go func() { errc <- forwardTCP(log, ln, target) }()
		case "udp":
			pc, err := net.ListenPacket("udp", listen)
			if err != nil {
				return fmt.Errorf("fwd: %w", err)
			}
			closers = append(closers, pc)
			go func() { errc <- forwardUDP(log, pc, target) }()
		default:
			return fmt.Errorf("fwd: bad protocol in %q", spec)
		}
		log.Info("forwarding", "proto", proto, "listen", listen, "target", target)
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		log.Error("forwarder stopped", "err", err)
	}
	for _, c := range closers {
		c.Close()
	}
	return nil
}

func forwardTCP(log *slog.Logger, ln net.Listener, target string) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			up, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				log.Warn("dial target", "target", target, "err", err)
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(up, c)
			go pipe(c, up)
			<-done
			<-done
		}()
	}
}

func forwardUDP(log *slog.Logger, pc net.PacketConn, target string) error {
	var mu sync.Mutex
	peers := map[string]net.Conn{}
	buf := make([]byte, 65535)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		key := addr.String()
		mu.Lock()
		up, ok := peers[key]
		if !ok {
			up, err = net.Dial("udp", target)
			if err != nil {
				mu.Unlock()
				log.Warn("dial target", "target", target, "err", err)
				continue
			}
			peers[key] = up
			go func() {
				defer func() {
					mu.Lock()
					delete(peers, key)
					mu.Unlock()
					up.Close()
				}()
				rb := make([]byte, 65535)
				for {
					_ = up.SetReadDeadline(time.Now().Add(udpIdle))
					m, err := up.Read(rb)
					if err != nil {
						return
					}
					if _, err := pc.WriteTo(rb[:m], addr); err != nil {
						return
					}
				}
			}()
		}
		mu.Unlock()
		_, _ = up.Write(buf[:n])
	}
}
