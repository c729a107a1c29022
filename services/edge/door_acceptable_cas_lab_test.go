//go:build lab

package edge_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/internal/testpki"
)

// TestLabCertificateRequestCANames asks the edge with openssl s_client, the
// tool an admin reaches for: the CertificateRequest lists the lab's trusted
// client CAs ("Acceptable client certificate CA names"), and lists none with
// segmesh.edge.omitClientCaNames. Issue 23 item 5.
func TestLabCertificateRequestCANames(t *testing.T) {
	lab := labenv.Up(t)
	leaf := testpki.CertFile(t, lab.User("alice").Cert)
	for _, omit := range []bool{false, true} {
		sm := startSegmesh(t, lab, runOptions{config: func(cfg map[string]any) {
			section(section(cfg, "segmesh"), "edge")["omitClientCaNames"] = omit
		}})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, "openssl", "s_client", "-connect", strings.TrimPrefix(sm.base, "https://"),
			"-servername", "seg.lab.test", "-tls1_3")
		cmd.Stdin = strings.NewReader("")
		out, _ := cmd.CombinedOutput() // no client certificate: the handshake may end in an alert
		cancel()
		text := string(out)
		issuerCN := leaf.Issuer.CommonName
		switch {
		case !omit && (!strings.Contains(text, "Acceptable client certificate CA names") || !strings.Contains(text, issuerCN)):
			t.Fatalf("names sent: openssl does not list %q:\n%s", issuerCN, text)
		case omit && !strings.Contains(text, "No client certificate CA names sent"):
			t.Fatalf("omitClientCaNames: openssl saw CA names:\n%s", text)
		}
	}
}
