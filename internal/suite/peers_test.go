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
			named := slices.ContainsFunc(edgeAlone, func(p config.Problem) bool { return p.Key == "segmesh.peers.ticket" })
			if named != tc.bad {
				t.Errorf("--roles edge names segmesh.peers.ticket: %v, want %v: %v", named, tc.bad, edgeAlone)
			}
		})
	}
}
