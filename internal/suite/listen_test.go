package suite

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
)

// fakeListenEnv is a machine holding 127.0.0.1, ::1 and 10.1.2.3, where
// ports below lowFrom need a capability, and where gw.corp.example
// resolves to 10.1.2.3 and elsewhere.corp.example to 10.9.9.9.
func fakeListenEnv(lowFrom int, nonlocal bool) listenEnv {
	return listenEnv{
		addrs: func() ([]net.Addr, error) {
			var out []net.Addr
			for _, s := range []string{"127.0.0.1/8", "::1/128", "10.1.2.3/24"} {
				ip, n, _ := net.ParseCIDR(s)
				out = append(out, &net.IPNet{IP: ip, Mask: n.Mask})
			}
			return out, nil
		},
		lowPortsFrom: func() (int, bool) { return lowFrom, true },
		nonlocalBind: func() bool { return nonlocal },
		lookup: func(_ context.Context, host string) ([]net.IPAddr, error) {
			switch host {
			case "gw.corp.example":
				return []net.IPAddr{{IP: net.ParseIP("10.1.2.3")}}, nil
			case "elsewhere.corp.example":
				return []net.IPAddr{{IP: net.ParseIP("10.9.9.9")}}, nil
			}
			return nil, errors.New("no such host")
		},
	}
}

// listenConfig is Default() with the three listen addresses.
func listenConfig(admin, grpc, edge string) *config.Config {
	c := config.Default()
	c.Segmesh.Admin.Listen, c.Segmesh.GRPC.Listen, c.Segmesh.Edge.Listen = admin, grpc, edge
	return &c
}

// TestListenProblems: every listener of the start is checked without
// binding: the host is this machine's, a low port needs the capability, no
// two listeners share a port; each problem names the setting and the value.
func TestListenProblems(t *testing.T) {
	type want struct {
		key, value, says string
		sev              config.Severity
	}
	for _, tc := range []struct {
		name     string
		cfg      *config.Config
		roles    []string
		lowFrom  int
		nonlocal bool
		want     []want
	}{
		{"the defaults", listenConfig("127.0.0.1:9090", "", "127.0.0.1:8443"), nil, 1024, false, nil},
		{"every address, loopback, this machine's, port 0", listenConfig("[::1]:9090", "10.1.2.3:9443", ":0"), nil, 1024, false, nil},
		{"a host name of this machine and localhost", listenConfig("localhost:9090", "", "gw.corp.example:8443"), nil, 1024, false, nil},
		{"port 443 without the capability", listenConfig("127.0.0.1:9090", "", ":443"), nil, 1024, false,
			[]want{{"segmesh.edge.listen", ":443", "CAP_NET_BIND_SERVICE", config.SeverityError}}},
		{"port 443 with the capability", listenConfig("127.0.0.1:9090", "", ":443"), nil, 0, false, nil},
		{"port 443 where unprivileged ports start at 0", listenConfig("127.0.0.1:9090", "", ":https"), nil, 0, false, nil},
		{"a named low port without the capability", listenConfig("127.0.0.1:9090", "", ":https"), nil, 1024, false,
			[]want{{"segmesh.edge.listen", ":https", "port 443", config.SeverityError}}},
		{"an unknown port name", listenConfig("127.0.0.1:9090", "", ":nosuchservice"), nil, 1024, false,
			[]want{{"segmesh.edge.listen", ":nosuchservice", "not a TCP port", config.SeverityError}}},
		{"an address of another machine", listenConfig("127.0.0.1:9090", "192.0.2.7:9443", ":8443"), nil, 1024, false,
			[]want{{"segmesh.grpc.listen", "192.0.2.7:9443", "not an address of this machine", config.SeverityError}}},
		{"an address of another machine, non-local binds allowed", listenConfig("127.0.0.1:9090", "192.0.2.7:9443", ":8443"), nil, 1024, true, nil},
		{"a host name of another machine", listenConfig("elsewhere.corp.example:9090", "", ":8443"), nil, 1024, false,
			[]want{{"segmesh.admin.listen", "elsewhere.corp.example:9090", "not an address of this machine", config.SeverityError}}},
		{"a host name that does not resolve", listenConfig("nowhere.corp.example:9090", "", ":8443"), nil, 1024, false,
			[]want{{"segmesh.admin.listen", "nowhere.corp.example:9090", "does not resolve", config.SeverityWarning}}},
		{"the admin and the edge on one address", listenConfig("127.0.0.1:8443", "", "127.0.0.1:8443"), nil, 1024, false,
			[]want{{"segmesh.edge.listen", "127.0.0.1:8443", "also segmesh.admin.listen", config.SeverityError}}},
		{"every address and loopback on one port", listenConfig("127.0.0.1:9090", "[::]:9090", ":8443"), nil, 1024, false,
			[]want{{"segmesh.grpc.listen", "[::]:9090", "also segmesh.admin.listen", config.SeverityError}}},
		{"two addresses on one port", listenConfig("127.0.0.1:9090", "10.1.2.3:9090", ":8443"), nil, 1024, false, nil},
		{"the edge's port where no edge runs", listenConfig("127.0.0.1:8443", "", "127.0.0.1:8443"), []string{role.Ticket}, 1024, false, nil},
		{"port 443 where no edge runs", listenConfig("127.0.0.1:9090", "", ":443"), []string{role.Identity, role.Ticket}, 1024, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := listenProblems(tc.cfg, tc.roles, fakeListenEnv(tc.lowFrom, tc.nonlocal))
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems %v, want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				p := got[i]
				if p.Key != w.key || p.Value != w.value || p.Severity != w.sev || !strings.Contains(p.Message, w.says) || p.Fix == "" {
					t.Errorf("problem %d: %v (%v), want %s %q saying %q (%v) with a fix", i, p, p.Severity, w.key, w.value, w.says, w.sev)
				}
			}
		})
	}
}

// TestValidateRefusesListenersTheStartCannotOpen: what `config check` and
// the start's Validate say on this machine agrees with binding: two
// listeners on one port, or an address this machine does not hold, fail to
// listen, and Validate (so `config check`, `run` and a reload) refuses them
// before any role is built. Before listenProblems, config check passed both.
func TestValidateRefusesListenersTheStartCannotOpen(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	for _, tc := range []struct {
		name        string
		cfg         *config.Config
		key         string
		binds       []string
		nonlocalRun bool // the case needs a machine refusing non-local binds
	}{
		{"the admin and the edge on one port", listenConfig(addr, "", addr), "segmesh.edge.listen", []string{addr}, false},
		{"the gRPC port on an address of another machine", listenConfig("127.0.0.1:0", "192.0.2.7:0", "127.0.0.1:0"), "segmesh.grpc.listen", []string{"192.0.2.7:0"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.nonlocalRun && machineEnv.nonlocalBind() {
				t.Skip("this machine lets a process bind an address it does not hold (ip_nonlocal_bind)")
			}
			// What the start would meet (the first address is held by free).
			_, lerr := net.Listen("tcp", tc.binds[0])
			if lerr == nil && !tc.nonlocalRun {
				t.Fatalf("listening on %s again worked", addr)
			}
			if lerr == nil {
				t.Skipf("%s is an address of this machine", tc.binds[0])
			}
			ps := Validate(tc.cfg, &config.Report{}, nil)
			if !slices.ContainsFunc(ps, func(p config.Problem) bool { return p.Key == tc.key && p.Severity == config.SeverityError }) {
				t.Errorf("Validate = %v; want an error on %s (listening fails: %v)", ps, tc.key, lerr)
			}
		})
	}
	_ = free.Close()
}
