//go:build lab

package identity

import (
	"context"
	"encoding/pem"
	"os"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/labenv"
	identityv1 "github.com/segmesh/segmesh/proto/segmesh/identity/v1"
)

// TestLabMapCertificate runs the role on the lab's own config.json (mapping
// on, ldaps://ldap.lab.test:636, segmesh.identity.ldapCaFile) behind a real
// gRPC server and maps the lab's device certificates.
func TestLabMapCertificate(t *testing.T) {
	e := labenv.Up(t)
	cfg := ConfigFrom(loadLabConfig(t, e))
	if !cfg.MappingHonoured() || cfg.LDAPCAFile == "" {
		t.Fatalf("the lab config does not turn mapping on with a CA file: %+v", cfg)
	}
	svc, cl, err := startService(t, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Ready(context.Background()); err != nil {
		t.Fatalf("Ready() = %v", err)
	}
	tests := []struct {
		user   string
		upn    string
		source identityv1.UPNSource
	}{
		{"bob", "bob.smith@lab.test", identityv1.UPNSource_UPN_SOURCE_LDAP_MAPPING},
		{"mallory", "mallory@lab.test", identityv1.UPNSource_UPN_SOURCE_LDAP_MAPPING},
		{"alice", "alice@lab.test", identityv1.UPNSource_UPN_SOURCE_CERTIFICATE_SAN},
		{"carol", "carol@lab.test", identityv1.UPNSource_UPN_SOURCE_LDAP_MAPPING},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			b, err := os.ReadFile(e.User(tt.user).Cert)
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(b)
			if block == nil {
				t.Fatal("no PEM")
			}
			resp, err := mapCert(cl, block.Bytes)
			if err != nil || !strings.EqualFold(resp.Upn, tt.upn) || resp.Realm != e.Realm || resp.Source != tt.source {
				t.Fatalf("MapCertificate(%s) = %v, %v; want %s from %v", tt.user, resp, err, tt.upn, tt.source)
			}
		})
	}
}
