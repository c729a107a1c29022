package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// personalBoard publishes what the roles publish about people and the
// directory: a refusal naming a user and a certificate, the LDAP endpoint.
func personalBoard() *Board {
	b := &Board{}
	b.Publish("edge", func() any {
		return map[string]any{"cached_tickets": 3, KeyRecentRefusals: []map[string]any{{"upn": "eve@lab.test",
			"subject": "CN=Eve Example,O=Lab", "serial": "4f2a", "issuer": "CN=Device CA", "reason": "certificate revoked"}}}
	})
	b.Publish("identity", func() any {
		return struct {
			LDAP   string `json:"ldap"`
			BaseDN string `json:"base_dn"`
		}{"ldaps://dc1.lab.test:3269", "DC=lab,DC=test"}
	})
	return b
}

var personalValues = []string{"eve@lab.test", "CN=Eve Example", "4f2a", "dc1.lab.test", "DC=lab,DC=test"}

// TestPersonalDataHiddenByDefault: /status.json and /status used to show
// UPNs, certificate subjects and serials, the LDAP endpoint and base DN to
// whoever reached the admin port. They are hidden unless
// segmesh.admin.showPersonalData is on.
func TestPersonalDataHiddenByDefault(t *testing.T) {
	for _, personal := range []bool{false, true} {
		s := New(Options{Listen: "127.0.0.1:0", Board: personalBoard(), PersonalData: personal})
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		_, body := get(t, "http://"+s.Addr()+"/status.json")
		_ = s.Stop(context.Background())
		srv := httptest.NewServer(StatusPage(StatusPageOptions{Board: personalBoard(), PersonalData: personal}))
		_, page := get(t, srv.URL+"/status")
		srv.Close()
		for name, out := range map[string]string{"/status.json": body, "/status": page} {
			for _, v := range personalValues {
				if strings.Contains(out, v) != personal {
					t.Errorf("showPersonalData=%v: %s shows %q: %v", personal, name, v, !personal)
				}
			}
			if !personal && (!strings.Contains(out, "certificate revoked") || !strings.Contains(out, "CN=Device CA")) {
				t.Errorf("%s lost what is not personal:\n%.600s", name, out)
			}
		}
	}
}

// TestAdminToken: with a token every path but the probes' needs it.
func TestAdminToken(t *testing.T) {
	s := New(Options{Listen: "127.0.0.1:0", Token: "s3cr3t-token", Board: personalBoard(),
		Readiness: func() map[string]error { return map[string]error{"edge": nil} },
		Metrics:   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("m 1\n")) }),
		Extra:     map[string]http.Handler{"GET /status": StatusPage(StatusPageOptions{Board: personalBoard()})}})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Stop(context.Background()) }()
	base := "http://" + s.Addr()
	tests := []struct {
		path, auth string
		want       int
	}{
		{"/healthz", "", 200},
		{"/readyz", "", 200},
		{"/metrics", "", 401},
		{"/status.json", "", 401},
		{"/status", "", 401},
		{"/metrics", "Bearer wrong", 401},
		{"/metrics", "Basic czNjcjN0LXRva2Vu", 401},
		{"/metrics", "Bearer s3cr3t-token", 200},
		{"/status.json", "Bearer s3cr3t-token", 200},
		{"/status", "Bearer s3cr3t-token", 200},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodGet, base+tt.path, nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s with %q: %d, want %d", tt.path, tt.auth, resp.StatusCode, tt.want)
		}
		if tt.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: 401 without a Bearer challenge", tt.path)
		}
	}
}
