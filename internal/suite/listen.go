package suite

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
)

// listenEnv is what listenProblems asks of this machine; tests replace it.
type listenEnv struct {
	// addrs returns this machine's interface addresses (net.InterfaceAddrs).
	addrs func() ([]net.Addr, error)
	// lowPortsFrom returns the first port this process may bind, and
	// whether it could tell: 0 with CAP_NET_BIND_SERVICE (root has it),
	// else net.ipv4.ip_unprivileged_port_start (1024 unless lowered).
	lowPortsFrom func() (int, bool)
	// nonlocalBind reports whether the kernel lets a process bind an
	// address it does not hold (net.ipv4.ip_nonlocal_bind, keepalived's
	// virtual addresses on the backup node).
	nonlocalBind func() bool
	// lookup resolves a host name written in a listen address.
	lookup func(ctx context.Context, host string) ([]net.IPAddr, error)
}

// machineEnv is listenEnv on this machine.
var machineEnv = listenEnv{
	addrs:        net.InterfaceAddrs,
	lowPortsFrom: lowPortsFrom,
	nonlocalBind: func() bool {
		return nonlocalBindFrom("/proc/sys/net/ipv4/ip_nonlocal_bind", "/proc/sys/net/ipv6/ip_nonlocal_bind")
	},
	lookup: net.DefaultResolver.LookupIPAddr,
}

// capNetBindService is CAP_NET_BIND_SERVICE's bit in /proc/self/status's
// CapEff (linux/capability.h).
const capNetBindService = 10

// lowPortsFrom reads the first port this process may bind from /proc:
// 0 when its effective capabilities hold CAP_NET_BIND_SERVICE, else
// net.ipv4.ip_unprivileged_port_start. Without /proc (not Linux) it cannot
// tell, and the check is left out.
func lowPortsFrom() (int, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, false
			}
			if caps&(1<<capNetBindService) != 0 {
				return 0, true
			}
		}
	}
	s, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024, true
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(s)))
	if err != nil {
		return 1024, true
	}
	return n, true
}

// nonlocalBindFrom reports whether the kernel may let a process bind an
// address it does not hold: one of paths (the ip_nonlocal_bind sysctls)
// holds a non-zero number, or none of them can be read. systemd's
// ProcSubset=pid, which the package's segmesh.service sets, hides /proc/sys
// from the service: the start cannot tell there, and a refusal must be
// sure, so the address is left to the bind (a keepalived backup node with
// ip_nonlocal_bind=1 starts, as it did before listenProblems).
func nonlocalBindFrom(paths ...string) bool {
	read := false
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		read = true
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n != 0 {
			return true
		}
	}
	return !read
}

// listenAddr is one listener the process opens.
type listenAddr struct {
	key, addr, host string
	port            int
}

// listenProblems returns why a listener of the start would not open, from
// the configuration and this machine alone, without binding (the running
// gateway holds its ports while an admin runs `config check` beside it):
// the address is not host:port, the host is not an address of this
// machine, a port below 1024 needs CAP_NET_BIND_SERVICE, two listeners name
// the same port. The listeners are segmesh.admin.listen, segmesh.grpc.listen
// when set and segmesh.edge.listen when the edge runs here (nil roles: all).
// Validate includes them, so a reload that changes one (it waits for a
// restart) is refused now rather than at the next reboot.
func listenProblems(cfg *config.Config, roles []string, env listenEnv) []config.Problem {
	s := cfg.Segmesh
	type named struct{ key, addr string }
	ls := []named{{"segmesh.admin.listen", s.Admin.Listen}}
	if s.GRPC.Listen != "" {
		ls = append(ls, named{"segmesh.grpc.listen", s.GRPC.Listen})
	}
	if roles == nil || slices.Contains(roles, role.Edge) {
		ls = append(ls, named{"segmesh.edge.listen", s.Edge.Listen})
	}
	var out []config.Problem
	bad := func(sev config.Severity, key, value, msg, fix string) {
		out = append(out, config.Problem{Severity: sev, Key: key, Value: value, Message: msg, Fix: fix})
	}
	var local map[string]bool // this machine's addresses, read once
	var seen []listenAddr
	for _, l := range ls {
		host, portText, err := net.SplitHostPort(l.addr)
		if err != nil || portText == "" {
			continue // config.Load's rule (validateSegmesh) names it
		}
		port, err := net.LookupPort("tcp", portText)
		if err != nil {
			bad(config.SeverityError, l.key, l.addr, fmt.Sprintf("port %q is not a TCP port number", portText), "write a port number from 1 to 65535")
			continue
		}
		if from, ok := env.lowPortsFrom(); ok && port != 0 && port < from {
			bad(config.SeverityError, l.key, l.addr,
				fmt.Sprintf("port %d is below %d: listening on it needs root or CAP_NET_BIND_SERVICE, which this process does not have, so the start would stop", port, from),
				lowPortFix)
		}
		if msg, sev := hostProblem(host, env, &local); msg != "" {
			bad(sev, l.key, l.addr, msg,
				"write an address this machine holds (ip -brief address), a loopback address, or leave the host out (\":"+portText+"\") to listen on all of them")
		}
		a := listenAddr{key: l.key, addr: l.addr, host: listenHost(host, env), port: port}
		for _, o := range seen {
			if a.port != 0 && a.port == o.port && (a.host == "" || o.host == "" || a.host == o.host) {
				bad(config.SeverityError, l.key, l.addr, fmt.Sprintf("port %d is also %s (%s): the second listener of the start would stop it", port, o.key, o.addr),
					"give each listener its own port")
				break
			}
		}
		seen = append(seen, a)
	}
	return out
}

// lowPortFix is the fix of a port below the first one this process may
// bind; ForCheck finds that problem by it.
const lowPortFix = "grant the capability (setcap cap_net_bind_service=+ep on the segmesh binary, or AmbientCapabilities=CAP_NET_BIND_SERVICE in the systemd unit), or listen on a port >= 1024 and forward to it"

// ForCheck returns Validate's problems as `segmesh config check` reports
// them. Validate's verdict on a port below 1024 is about the process that
// runs it: exact for `run` and a reload, which listen, but check runs in
// the admin's shell or as CI's `runuser -u segmesh`, without the
// CAP_NET_BIND_SERVICE the package's segmesh.service grants the service
// (AmbientCapabilities). There the problem is a warning naming what the
// service needs: as an error it refused the package's own ":443".
func ForCheck(ps []config.Problem) []config.Problem {
	out := slices.Clone(ps)
	for i, p := range out {
		if p.Fix != lowPortFix || p.Severity != config.SeverityError {
			continue
		}
		out[i].Severity = config.SeverityWarning
		out[i].Message = "listening on this port needs root or CAP_NET_BIND_SERVICE, which this check does not have: the service starts only if it has one of them (the package's segmesh.service grants the capability; `segmesh run` refuses to start without it)"
	}
	return out
}

// forReload returns Validate's problems as a reload weighs them: a
// listener problem the running configuration has as well (its address left
// as it is, the host gone since the start: a keepalived address moved to
// the other node without ip_nonlocal_bind) is not the save's doing, and the
// open listener keeps serving, so it is a warning naming the restart it
// would stop, not a refusal that would keep every live setting (a trust
// store's CA removed) out until the address comes back. A listener the
// save moves or adds is judged as before. running is the configuration
// the listeners were opened from (the start's), not the last one a reload
// accepted.
func forReload(ps []config.Problem, running *config.Config, roles []string, env listenEnv) []config.Problem {
	if running == nil {
		return ps
	}
	had := map[config.Problem]bool{}
	for _, p := range listenProblems(running, roles, env) {
		had[p] = true
	}
	out := slices.Clone(ps)
	for i, p := range out {
		// listenProblems sets no Err; a problem with one (any error a
		// role returns, perhaps of a type that cannot be a map key) is
		// not a listener's.
		if p.Severity == config.SeverityError && p.Err == nil && had[p] {
			out[i].Severity = config.SeverityWarning
			out[i].Message += " (the running configuration has the same listener, which stays open: only a restart would stop on it)"
		}
	}
	return out
}

// listenHost returns the address a listener on host binds, as
// canonicalHost writes it: for a name, the address Go's net.Listen picks
// among those it resolves to (the first IPv4 one, else the first), so that
// "localhost:9090" and "127.0.0.1:9090" are seen as the one port they are;
// a name that does not resolve now is compared as written.
func listenHost(host string, env listenEnv) string {
	if host == "" || net.ParseIP(host) != nil {
		return canonicalHost(host)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	as, err := env.lookup(ctx, host)
	if err != nil || len(as) == 0 {
		return canonicalHost(host)
	}
	pick := as[0].IP
	for _, a := range as {
		if a.IP.To4() != nil {
			pick = a.IP
			break
		}
	}
	return canonicalHost(pick.String())
}

// canonicalHost returns host as its IP's text, "" for an unspecified
// address (it binds them all: Go listens dual-stack), or host in lower case.
func canonicalHost(host string) string {
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() {
			return ""
		}
		return ip.String()
	}
	return strings.ToLower(host)
}

// hostProblem returns why the start could not listen on host, and how
// sure it is: an error for an address this machine does not hold, a
// warning for a name that does not resolve now. local caches the machine's
// addresses.
func hostProblem(host string, env listenEnv, local *map[string]bool) (string, config.Severity) {
	if host == "" || strings.EqualFold(host, "localhost") {
		return "", 0
	}
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		as, err := env.lookup(ctx, host)
		if err != nil || len(as) == 0 {
			return fmt.Sprintf("the host %q does not resolve now (%v): the start would stop if it still does not", host, err), config.SeverityWarning
		}
		for _, a := range as {
			ips = append(ips, a.IP)
		}
	}
	for _, ip := range ips {
		if ip.IsUnspecified() || ip.IsLoopback() {
			return "", 0
		}
	}
	if env.nonlocalBind() {
		return "", 0 // the kernel lets the listener bind an address it does not hold yet
	}
	if *local == nil {
		as, err := env.addrs()
		if err != nil {
			return "", 0 // cannot tell
		}
		*local = map[string]bool{}
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok {
				(*local)[n.IP.String()] = true
			}
		}
	}
	for _, ip := range ips {
		if (*local)[ip.String()] {
			return "", 0
		}
	}
	return fmt.Sprintf("%s is not an address of this machine: the start would stop (bind: cannot assign requested address)", host), config.SeverityError
}
