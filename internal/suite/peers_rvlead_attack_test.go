package suite

import (
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
)

// TestAttackPeerWarningsLocalAndRemote: peerWarnings for the targets that
// look local and are not (each must draw the plaintext warning), those that
// are local and do not look it (a false alarm teaches admins to skip the
// warnings), and loopback written without a port (gRPC dials 443 there
// too: every call fails). "localhost." and "LOCALHOST" are not local: an
// HTTPS_PROXY in the environment takes them (role's
// TestAttackPeerEndpointLocalNotProxied). On main "[::1]" drew the
// plaintext warning, "LOCALHOST" none, and "localhost", "127.0.0.1" and "[::1]" without a
// port drew no port warning, and "2001:db8::1" was told gRPC dials
// 2001:db8::1:443 (not bracketed); the other rows held.
func TestAttackPeerWarningsLocalAndRemote(t *testing.T) {
	for _, tc := range []struct {
		ticket            string
		plaintext, noPort bool
	}{
		{ticket: "localhost.example.com:9443", plaintext: true},
		{ticket: "127.0.0.1.nip.io:9443", plaintext: true},
		{ticket: "x.localhost:9443", plaintext: true},
		{ticket: "dns://127.0.0.1:53/ticket:9443", plaintext: true},
		{ticket: "passthrough:///10.0.0.5:9443", plaintext: true},
		{ticket: "[64:ff9b::7f00:1]:9443", plaintext: true},
		{ticket: "0.0.0.0:9443", plaintext: true},
		{ticket: "2001:db8::1", plaintext: true, noPort: true},
		{ticket: "localhost.:9443", plaintext: true},
		{ticket: "LOCALHOST:9443", plaintext: true},
		{ticket: "[::ffff:127.0.0.1]:9443"},
		{ticket: "dns://10.0.0.53/localhost:9443"},
		{ticket: "unix-abstract:segmesh-ticket"},
		{ticket: "localhost", noPort: true},
		{ticket: "127.0.0.1", noPort: true},
		{ticket: "[::1]", noPort: true},
	} {
		t.Run(tc.ticket, func(t *testing.T) {
			c := peerConfig(tc.ticket)
			var plaintext, noPort bool
			for _, p := range peerProblems(&c, []string{role.Edge}) {
				if p.Key != "segmesh.peers.ticket" || p.Severity != config.SeverityWarning {
					t.Errorf("unexpected %s", p)
				}
				plaintext = plaintext || strings.Contains(p.Message, "in clear")
				if strings.Contains(p.Message, "names no port") {
					noPort = true
					if strings.Contains(p.Message, "[::1]:443") != (tc.ticket == "[::1]") || strings.Contains(p.Message, "::1:443") && !strings.Contains(p.Message, "]:443") {
						t.Errorf("%s: want the address gRPC dials, bracketed for IPv6", p)
					}
				}
			}
			if plaintext != tc.plaintext || noPort != tc.noPort {
				t.Errorf("warned plaintext %v, no port %v; want %v, %v", plaintext, noPort, tc.plaintext, tc.noPort)
			}
		})
	}
}
