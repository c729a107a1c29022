package role

import (
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// TestCheckPeerAgreesWithConn: CheckPeer, which Validate runs before any
// role is built, refuses exactly what the group's Conn refuses for a role
// run elsewhere, with the same words, and connects to nobody.
func TestCheckPeerAgreesWithConn(t *testing.T) {
	for _, tc := range []struct {
		name, addr string
		bad        bool
	}{
		{"no address", "", true},
		{"an address grpc cannot parse", "%zz:9443", true},
		{"host:port", "10.0.0.5:9443", false},
		{"a DNS target", "dns:///ticket.seg.svc:9443", false},
		{"a DNS target with its server", "dns://10.0.0.53/ticket.seg.svc:9443", false},
		{"a host alone", "ticket.seg.svc", false},
		{"a Unix socket", "unix:///run/segmesh/ticket.sock", false},
		// An @ in a socket's path or abstract name is no user information
		// (5d33ea0 refused them, naming the path "xxxxx@b.sock").
		{"a Unix socket with an @ in its path", "unix:///run/a@b.sock", false},
		{"a relative Unix socket with an @", "unix:run/a@b.sock", false},
		{"an abstract socket with an @", "unix-abstract:seg@mesh", false},
		// Targets grpc.NewClient takes but whose resolver refuses them
		// when the first call comes: on main CheckPeer and Conn passed
		// them, the start went on and every call to the role failed.
		{"a DNS target without a host", "dns:///", true},
		{"a port separator without a port", "ticket.seg.svc:", true},
		{"a Unix socket with a host", "unix://ticket/run/segmesh/ticket.sock", true},
		{"a scheme grpc does not know", "https://ticket.seg.svc:9443", true},
		// User information, which gRPC drops without a word: refused
		// alike, and neither says the password (TestAttackPeerTargetUserinfo).
		{"user information for the DNS server", "dns://admin:S3cret@10.0.0.53/ticket.seg.svc:9443", true},
		{"user information in a passthrough target", "passthrough://admin:S3cret@x/10.0.0.5:9443", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, checkErr, connErr := checkAndConn(t, tc.addr)
			if (checkErr != nil) != tc.bad || (connErr != nil) != tc.bad {
				t.Fatalf("CheckPeer: %v, Conn: %v; want refused: %v", checkErr, connErr, tc.bad)
			}
			if tc.bad && checkErr.Error() != connErr.Error() {
				t.Errorf("CheckPeer says %q, Conn %q", checkErr, connErr)
			}
			if tc.bad && strings.Contains(checkErr.Error()+connErr.Error(), "S3cret") {
				t.Errorf("the refusal shows the password: %v", checkErr)
			}
			if got := PeerAddr(c, Ticket); got != tc.addr {
				t.Errorf("PeerAddr = %q, want %q", got, tc.addr)
			}
		})
	}
}

// checkAndConn returns what CheckPeer and an edge group's Conn say of addr
// as segmesh.peers.ticket, and the configuration.
func checkAndConn(t *testing.T, addr string) (c *config.Config, checkErr, connErr error) {
	t.Helper()
	c = testConfig()
	c.Segmesh.Peers.Ticket = addr
	g, err := NewGroup(GroupOptions{Config: c, Roles: []string{Edge}, Constructors: ctors(&journal{}, "", nil)})
	if err != nil {
		t.Fatal(err)
	}
	_, connErr = g.Conn(Ticket)
	return c, CheckPeer(c, Ticket), connErr
}
