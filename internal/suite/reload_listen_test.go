package suite

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// TestReloadNotBlockedByARunningListenerGone: a keepalived node whose
// virtual address moved away after the start (no ip_nonlocal_bind) keeps
// its listener open, and the next restart would stop on it; a save that
// leaves that listen address as it is must still apply its live settings (a
// trust store's CA removed, a log level), with the listener named as a
// warning, while a save that moves the listener to another address this
// machine does not hold is refused as before (rvconf's left item 5,
// session 9).
func TestReloadNotBlockedByARunningListenerGone(t *testing.T) {
	held := fakeListenEnv(1024, false) // holds 10.1.2.3
	gone := held
	gone.addrs = func() ([]net.Addr, error) {
		_, n, _ := net.ParseCIDR("127.0.0.1/8")
		return []net.Addr{n}, nil
	}
	saved := machineEnv
	t.Cleanup(func() { machineEnv = saved })
	machineEnv = held

	g := &fakeApplier{}
	// The process starts with the listener open on 10.1.2.3 (rvlead: a
	// listener only an earlier reload named is not open, and is judged as
	// a move; TestAttackReloadListenerNotRunning).
	r, path, level := newBootReloader(t, g, meshListen("info", "10.1.2.3:9443"))
	ctx := context.Background()
	writeJSON(t, path, meshListen("info", "10.1.2.3:9443"))
	if err := r.Reload(ctx, "SIGHUP"); err != nil {
		t.Fatalf("the listener on an address this machine holds is refused: %v", err)
	}

	machineEnv = gone // the address moved to the other node
	writeJSON(t, path, meshListen("debug", "10.1.2.3:9443"))
	if err := r.Reload(ctx, "SIGHUP"); err != nil {
		t.Fatalf("a save that keeps the running listener as it is was refused: %v", err)
	}
	if level.Level() != -4 {
		t.Fatalf("log level %v after the reload, want debug", level.Level())
	}
	warned := slices.ContainsFunc(r.Problems(), func(p config.Problem) bool {
		return p.Key == "segmesh.grpc.listen" && p.Severity == config.SeverityWarning && strings.Contains(p.Message, "restart")
	})
	if !warned {
		t.Fatalf("the listener a restart would not open is not named as a warning: %+v", r.Problems())
	}

	writeJSON(t, path, meshListen("info", "10.9.9.9:9443"))
	if err := r.Reload(ctx, "SIGHUP"); err == nil {
		t.Fatal("a save moving the listener to an address this machine does not hold was applied")
	}
	if level.Level() != -4 {
		t.Fatalf("log level %v after a refused reload, want debug still", level.Level())
	}
}

// meshListen is reloadConfig's crl-only process with its gRPC listener on
// addr inside a mesh that provides mTLS (a non-loopback listener is allowed).
func meshListen(level, addr string) map[string]any {
	c := reloadConfig(level, false, "", addr)
	g := sub(sub(c, "segmesh"), "grpc")
	g["meshProvidesMtls"] = true
	g["allowedPeers"] = []string{"spiffe://cluster.local/ns/segmesh/sa/segmesh-edge"}
	return c
}
