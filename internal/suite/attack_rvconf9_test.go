package suite

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// TestAttackCheckAsTheServiceUserOnPort443 (session 9's rvconf): CI's
// package step (.ci/package.sh) runs `runuser -u segmesh -- segmesh config
// check` on the package's config.json, whose segmesh.edge.listen is ":443".
// runuser's shell has no CAP_NET_BIND_SERVICE, the service has it (the
// unit's AmbientCapabilities). On main `config check` printed Validate's
// verdict for the checking process: "port 443 is below 1024 ... error",
// exit 1, so the package step (and an admin's check of the package's own
// layout) failed. Run and a reload, which listen, still refuse the port
// without the capability; check warns. A shared port stays an error in
// check: only the privilege-dependent problem changes.
func TestAttackCheckAsTheServiceUserOnPort443(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       *config.Config
		key       string
		checkWant config.Severity
	}{
		{"the package's :443 as the service user", listenConfig("127.0.0.1:9090", "", ":443"), "segmesh.edge.listen", config.SeverityWarning},
		{"the admin on 80", listenConfig("127.0.0.1:80", "", "127.0.0.1:8443"), "segmesh.admin.listen", config.SeverityWarning},
		{"two listeners on one port", listenConfig("127.0.0.1:9090", "", ":9090"), "segmesh.edge.listen", config.SeverityError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := listenProblems(tc.cfg, nil, fakeListenEnv(1024, false))
			if err := config.ErrorOf("config.json", run); err == nil {
				t.Fatalf("run's problems = %v; want an error on %s (this process cannot listen there)", run, tc.key)
			}
			check := ForCheck(run)
			i := slices.IndexFunc(check, func(p config.Problem) bool { return p.Key == tc.key })
			if i < 0 || check[i].Severity != tc.checkWant {
				t.Fatalf("config check's problems = %v; want %v on %s", check, tc.checkWant, tc.key)
			}
			if tc.checkWant == config.SeverityWarning {
				if err := config.ErrorOf("config.json", check); err != nil {
					t.Errorf("config check refuses what the service (with its unit's capability) runs: %v", err)
				}
				if check[i].Fix != lowPortFix {
					t.Errorf("the warning's fix = %q; want the capability's", check[i].Fix)
				}
			}
			if again := listenProblems(tc.cfg, nil, fakeListenEnv(1024, false)); !slices.EqualFunc(run, again, config.Problem.Same) {
				t.Errorf("ForCheck changed its argument: %v; was %v", run, again)
			}
		})
	}
}

// TestAttackNonlocalBindHidden (session 9's rvconf): the package's
// segmesh.service sets ProcSubset=pid, which hides /proc/sys from the
// service (checked: a proc mounted with subset=pid has no sys/). On main
// the start read "no ip_nonlocal_bind" from the missing file and refused a
// keepalived virtual address on the backup node ("is not an address of
// this machine") that the bind, with ip_nonlocal_bind=1, accepts. A file
// that cannot be read tells nothing: the address is left to the bind; a
// file that reads 0 still refuses.
func TestAttackNonlocalBindHidden(t *testing.T) {
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	off, on, missing := write("off", "0\n"), write("on", "1\n"), filepath.Join(dir, "sys", "net", "ipv4", "ip_nonlocal_bind")
	for _, tc := range []struct {
		name      string
		paths     []string
		nonlocal  bool
		wantError bool
	}{
		{"hidden by ProcSubset=pid", []string{missing, missing}, true, false},
		{"both read 0", []string{off, off}, false, true},
		{"ipv6 on", []string{off, on}, true, false},
		{"ipv4 on, ipv6 hidden", []string{on, missing}, true, false},
		{"ipv4 0, ipv6 hidden", []string{off, missing}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nonlocalBindFrom(tc.paths...); got != tc.nonlocal {
				t.Fatalf("nonlocalBindFrom = %v; want %v", got, tc.nonlocal)
			}
			env := fakeListenEnv(0, false)
			env.nonlocalBind = func() bool { return nonlocalBindFrom(tc.paths...) }
			ps := listenProblems(listenConfig("127.0.0.1:9090", "", "192.0.2.7:443"), nil, env)
			if got := config.ErrorOf("config.json", ps) != nil; got != tc.wantError {
				t.Errorf("listenProblems = %v; want an error: %v", ps, tc.wantError)
			}
		})
	}
}

// TestAttackOnePortNamedTwoWays (session 9's rvconf): segmesh.admin.listen
// "localhost:P" and segmesh.edge.listen "127.0.0.1:P" are one port (Go
// listens on the first IPv4 address a name resolves to): the start's
// second listener fails (checked: bind: address already in use), but on
// main listenProblems compared "localhost" with "127.0.0.1" as text and
// config check, run's Validate and a reload passed it. The same for a name
// of this machine and its address.
func TestAttackOnePortNamedTwoWays(t *testing.T) {
	env := fakeListenEnv(0, false)
	lookup := env.lookup
	env.lookup = func(ctx context.Context, host string) ([]net.IPAddr, error) {
		if host == "localhost" {
			return []net.IPAddr{{IP: net.ParseIP("::1")}, {IP: net.ParseIP("127.0.0.1")}}, nil
		}
		return lookup(ctx, host)
	}
	for _, tc := range []struct {
		name      string
		cfg       *config.Config
		wantError bool
	}{
		{"localhost and 127.0.0.1", listenConfig("localhost:9090", "", "127.0.0.1:9090"), true},
		{"a name of this machine and its address", listenConfig("127.0.0.1:9090", "gw.corp.example:9443", "10.1.2.3:9443"), true},
		{"localhost and ::1 (Go listens on 127.0.0.1)", listenConfig("localhost:9090", "", "[::1]:9090"), false},
		{"a name that does not resolve, compared as written", listenConfig("127.0.0.1:9090", "", "nowhere.corp.example:9090"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := listenProblems(tc.cfg, nil, env)
			got := slices.ContainsFunc(ps, func(p config.Problem) bool {
				return p.Severity == config.SeverityError && strings.Contains(p.Message, "is also")
			})
			if got != tc.wantError {
				t.Errorf("listenProblems = %v; want a shared port refused: %v", ps, tc.wantError)
			}
		})
	}
	// On this machine: what the bind says, Validate says.
	first, err := net.Listen("tcp", "localhost:0")
	if err != nil {
		t.Skipf("cannot listen on localhost: %v", err)
	}
	defer func() { _ = first.Close() }()
	_, port, _ := net.SplitHostPort(first.Addr().String())
	second, lerr := net.Listen("tcp", "127.0.0.1:"+port)
	if lerr == nil {
		_ = second.Close()
		t.Skipf("localhost is not 127.0.0.1 here (%s)", first.Addr())
	}
	cfg := listenConfig("localhost:"+port, "", "127.0.0.1:"+port)
	if ps := Validate(cfg, &config.Report{}, nil); !slices.ContainsFunc(ps, func(p config.Problem) bool {
		return p.Key == "segmesh.edge.listen" && p.Severity == config.SeverityError
	}) {
		t.Errorf("Validate = %v; want an error on segmesh.edge.listen (the bind: %v)", ps, lerr)
	}
}
