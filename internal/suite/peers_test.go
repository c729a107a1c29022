package suite

import (
	"slices"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/secret"
)

// TestCheckWithoutRolesAgreesWithRunAll pins that `config check` without
// --roles (nil roles) and `segmesh run` without --roles (every role by
// name, role.ParseRoles("all")) judge the same file alike: every role runs
// in the one process, the edge calls them in-process (role.Group.Conn, see
// TestConnInProcessIgnoresPeers) and no segmesh.peers address is dialled, so
// neither checks nor refuses one, however written. With the edge alone the
// same addresses are checked, so the rule is live.
func TestCheckWithoutRolesAgreesWithRunAll(t *testing.T) {
	all, err := role.ParseRoles("all", Constructors())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		peers config.Peers
		bad   bool // role.CheckPeer refuses the ticket address
	}{
		{"no peers", config.Peers{}, true},
		{"peers written", config.Peers{Identity: "10.0.0.5:9443", Ticket: "dns:///ticket.seg.svc:9443", CRL: "10.0.0.6:9443"}, false},
		{"a peer grpc refuses", config.Peers{Identity: "10.0.0.5:9443", Ticket: "%zz", CRL: "10.0.0.6:9443"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			c.KCD.Enabled, c.KCD.TargetSPN = true, "HTTP/mail.corp.example"
			c.KCD.ServiceAccountUserName, c.KCD.ServiceAccountPassword = "svc_seg", secret.New("pw")
			c.KCD.Domains = []config.DomainPair{{Domain: "CORP.EXAMPLE", DomainController: "dc1.corp.example"}}
			c.Segmesh.Peers = tc.peers
			if err := role.CheckPeer(&c, role.Ticket); (err != nil) != tc.bad {
				t.Fatalf("CheckPeer(ticket %q) = %v, want refused: %v", tc.peers.Ticket, err, tc.bad)
			}
			check := Validate(&c, &config.Report{}, nil)
			run := Validate(&c, &config.Report{}, all)
			if !slices.EqualFunc(check, run, config.Problem.Same) {
				t.Fatalf("config check without --roles: %v\nrun without --roles: %v", check, run)
			}
			for _, p := range check {
				if strings.HasPrefix(p.Key, "segmesh.peers.") {
					t.Errorf("every role runs here, yet %s", p)
				}
			}
			edgeAlone := Validate(&c, &config.Report{}, []string{role.Edge})
			named := slices.ContainsFunc(edgeAlone, func(p config.Problem) bool {
				return p.Key == "segmesh.peers.ticket" && p.Severity == config.SeverityError
			})
			if named != tc.bad {
				t.Errorf("--roles edge names segmesh.peers.ticket: %v, want %v: %v", named, tc.bad, edgeAlone)
			}
		})
	}
}

// TestPeerWarnings: the calling side of a split edge. A remote role's
// address that leaves the machine while the calls are plaintext (no
// segmesh.grpc.certFile, no mesh said to carry them) is a warning naming
// what crosses in clear (for the ticket role, the users' service tickets
// and session keys); so is a DNS target without a port (gRPC dials 443).
// Loopback, a unix socket, mTLS or a mesh say nothing. Before this, check
// and start said nothing of either (rvcheck2's left items).
func TestPeerWarnings(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ticket    string
		certFile  string
		mesh      bool
		plaintext bool // a warning that the calls cross in clear
		noPort    bool // a warning that gRPC dials 443
	}{
		{name: "another host, plaintext", ticket: "10.0.0.5:9443", plaintext: true},
		{name: "a DNS name, plaintext", ticket: "dns:///ticket.seg.svc:9443", plaintext: true},
		{name: "a bare name, plaintext", ticket: "ticket.seg.svc:9443", plaintext: true},
		{name: "loopback v4", ticket: "127.0.0.1:9443"},
		{name: "loopback v6", ticket: "[::1]:9443"},
		{name: "localhost", ticket: "localhost:9443"},
		{name: "unix socket", ticket: "unix:///run/segmesh/ticket.sock"},
		{name: "mTLS", ticket: "dns:///ticket.seg.svc:9443", certFile: "rpc/tls.crt"},
		{name: "mesh", ticket: "dns:///ticket.seg.svc:9443", mesh: true},
		{name: "no port, mTLS", ticket: "dns:///ticket.seg.svc", certFile: "rpc/tls.crt", noPort: true},
		{name: "no port, plaintext", ticket: "ticket.seg.svc", plaintext: true, noPort: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := peerConfig(tc.ticket)
			c.Segmesh.GRPC.CertFile, c.Segmesh.GRPC.MeshProvidesMTLS = tc.certFile, tc.mesh
			var plaintext, noPort bool
			for _, p := range peerProblems(&c, []string{role.Edge}) {
				if p.Key != "segmesh.peers.ticket" {
					t.Errorf("a problem for another peer: %s", p)
					continue
				}
				if p.Severity != config.SeverityWarning {
					t.Errorf("%s: want a warning (the start allows it)", p)
				}
				switch {
				case strings.Contains(p.Message, "in clear"):
					plaintext = true
					if !strings.Contains(p.Message, "session keys") || !strings.Contains(p.Fix, "segmesh.grpc.certFile") {
						t.Errorf("%s: want what crosses in clear and the settings that fix it", p)
					}
				case strings.Contains(p.Message, ":443"):
					noPort = true
				default:
					t.Errorf("unexpected %s", p)
				}
			}
			if plaintext != tc.plaintext || noPort != tc.noPort {
				t.Errorf("warned plaintext %v, no port %v; want %v, %v", plaintext, noPort, tc.plaintext, tc.noPort)
			}
		})
	}
}

// peerConfig is a valid configuration whose edge calls the ticket role at
// ticket and the other roles on loopback.
func peerConfig(ticket string) config.Config {
	c := config.Default()
	c.KCD.Enabled, c.KCD.TargetSPN = true, "HTTP/mail.corp.example"
	c.KCD.ServiceAccountUserName, c.KCD.ServiceAccountPassword = "svc_seg", secret.New("pw")
	c.KCD.Domains = []config.DomainPair{{Domain: "CORP.EXAMPLE", DomainController: "dc1.corp.example"}}
	c.Segmesh.Peers = config.Peers{Identity: "127.0.0.1:9443", Ticket: ticket, CRL: "127.0.0.1:9444"}
	return c
}

// TestAttackPeerTargetUserinfo (rvlead's left item, review of 6633b6f): a
// segmesh.peers target with user information, which gRPC never uses, was
// accepted, and the target was shown whole, password included, by config
// check, the start's log and /status (the new warnings' Value, and gRPC's
// and url's errors quoting it). Now it is refused, and nothing shown
// carries the password.
func TestAttackPeerTargetUserinfo(t *testing.T) {
	const password = "S3cret-pw"
	for _, target := range []string{
		"dns://admin:" + password + "@10.0.0.53/ticket.seg.svc:9443",
		"dns://admin:" + password + "@10.0.0.53:53/ticket.seg.svc:9443",
		"dns:///admin:" + password + "@ticket.seg.svc:9443",
		"admin:" + password + "@ticket.seg.svc:9443",
		"passthrough://admin:" + password + "@x/10.0.0.5:9443",
		"dns://admin:pa/" + password + "@10.0.0.53/ticket.seg.svc:9443",
		"dns://admin:" + password + "@[fe80::1%25zz]/ticket:9443",
		// A "/" after the password: RedactTarget kept what came before it
		// (rvlead2, review of 5d33ea0).
		"admin:" + password + "/x@ticket.seg.svc:9443",
		"admin:" + password + "//x@ticket.seg.svc:9443",
		"dns:admin:" + password + "/x@ticket.seg.svc:9443",
	} {
		t.Run(target, func(t *testing.T) {
			c := peerConfig(target)
			err := role.CheckPeer(&c, role.Ticket)
			if err == nil {
				t.Fatalf("CheckPeer(%q) accepted a target with user information", target)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("CheckPeer's error shows the password: %v", err)
			}
			problems := peerProblems(&c, []string{role.Edge})
			if len(problems) == 0 {
				t.Fatal("no problem for segmesh.peers.ticket")
			}
			for _, p := range problems {
				if strings.Contains(p.String(), password) || strings.Contains(p.Value, password) || strings.Contains(p.Fix, password) {
					t.Errorf("a problem shows the password: %s", p)
				}
			}
			if red := role.RedactTarget(target); strings.Contains(red, password) || !strings.Contains(red, "xxxxx@") {
				t.Errorf("RedactTarget(%q) = %q", target, red)
			}
		})
	}
}
