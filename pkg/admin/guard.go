package admin

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
)

// PersonalKeys are the status keys whose values name a person, a
// certificate or the directory: user principal names, certificate subjects
// and serials, the LDAP endpoint and base DN. /status.json and /status hide
// their values unless segmesh.admin.showPersonalData is on.
var PersonalKeys = []string{"upn", "subject", "serial", "ldap", "base_dn"}

// Hidden replaces a personal value on the admin port.
const Hidden = "hidden (segmesh.admin.showPersonalData)"

// redactPersonal returns v (a status section) with the values of
// PersonalKeys replaced by Hidden, at any depth. It works on v's JSON form,
// as the status page does; v itself is not changed.
func redactPersonal(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return Hidden
	}
	var g any
	if err := json.Unmarshal(b, &g); err != nil {
		return Hidden
	}
	return redactValue(g)
}

func redactValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if isPersonal(k) {
				if s, ok := x.(string); !ok || s != "" {
					t[k] = Hidden
				}
				continue
			}
			t[k] = redactValue(x)
		}
	case []any:
		for i, x := range t {
			t[i] = redactValue(x)
		}
	}
	return v
}

func isPersonal(k string) bool {
	for _, p := range PersonalKeys {
		if strings.EqualFold(k, p) {
			return true
		}
	}
	return false
}

// sectionsFor returns the Board's sections, with personal values hidden
// unless personal is true.
func (b *Board) sectionsFor(personal bool) map[string]any {
	out := b.Snapshot()
	if personal {
		return out
	}
	for k, v := range out {
		out[k] = redactPersonal(v)
	}
	return out
}

// requireToken wraps h so that every path but /healthz and /readyz (the
// probes') needs "Authorization: Bearer <token>"; an empty token leaves h
// open. The compare takes constant time.
func requireToken(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			h.ServeHTTP(w, r)
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="segmesh admin"`)
			http.Error(w, "401 unauthorized: this admin port needs the bearer token of segmesh.admin.tokenFile", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
