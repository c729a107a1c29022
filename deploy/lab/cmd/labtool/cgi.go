package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cgi"
	"os"
	"strconv"
	"strings"
	"time"
)

// maxHold bounds ?hold=SECONDS (an EAS Ping lasts at most 3540 s).
const maxHold = 3600

// echoReply is what the Exchange stand-in answers. It never carries a
// credential: only the names of the Authorization schemes that arrived.
type echoReply struct {
	RemoteUser string `json:"remote_user"`
	AuthType   string `json:"auth_type"`
	GSSName    string `json:"gss_name,omitempty"`
	Method     string `json:"method"`
	Path       string `json:"path"`
	Query      string `json:"query"`
	Host       string `json:"host"`
	HTTPS      bool   `json:"https"`
	// AuthorizationSchemes lists the scheme of each Authorization value
	// that reached Apache (Negotiate when the edge did its job).
	AuthorizationSchemes []string `json:"authorization_schemes"`
	// OtherAuthorization reports whether any non-Negotiate Authorization
	// arrived (a device's Basic header the edge failed to strip).
	OtherAuthorization bool              `json:"other_authorization"`
	BodyLength         int64             `json:"body_length"`
	BodySHA256         string            `json:"body_sha256"`
	HeldSeconds        float64           `json:"held_seconds"`
	Headers            map[string]string `json:"headers"`
}

// isSecretHeader reports whether a header must never appear in the reply.
func isSecretHeader(k string) bool {
	switch k {
	case "Authorization", "Cookie", "Proxy-Authorization":
		return true
	}
	return false
}

func serveCGI(stderr io.Writer) error {
	return cgi.Serve(echoHandler(os.Getenv, time.Sleep, stderr))
}

// echoHandler answers what arrived. getenv reads the CGI variables Apache
// sets (REMOTE_USER, AUTH_TYPE, GSS_NAME, HTTPS); sleep holds a ?hold= request.
func echoHandler(getenv func(string) string, sleep func(time.Duration), stderr io.Writer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := echoReply{
			RemoteUser: getenv("REMOTE_USER"),
			AuthType:   getenv("AUTH_TYPE"),
			GSSName:    getenv("GSS_NAME"),
			Method:     r.Method,
			Path:       r.URL.Path,
			Query:      r.URL.RawQuery,
			Host:       r.Host,
			HTTPS:      getenv("HTTPS") == "on",
			Headers:    map[string]string{},
		}
		for _, v := range r.Header.Values("Authorization") {
			for _, part := range strings.Split(v, ",") {
				scheme, _, _ := strings.Cut(strings.TrimSpace(part), " ")
				if scheme == "" {
					continue
				}
				rep.AuthorizationSchemes = append(rep.AuthorizationSchemes, scheme)
				if !strings.EqualFold(scheme, "Negotiate") {
					rep.OtherAuthorization = true
				}
			}
		}
		for k, v := range r.Header {
			if !isSecretHeader(k) {
				rep.Headers[k] = strings.Join(v, ", ")
			}
		}
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		rep.BodyLength, rep.BodySHA256 = n, hex.EncodeToString(h.Sum(nil))
		if s := r.URL.Query().Get("hold"); s != "" {
			if secs, err := strconv.ParseFloat(s, 64); err == nil && secs > 0 {
				secs = min(secs, maxHold)
				// Emulates an EAS Ping held open by the server.
				sleep(time.Duration(secs * float64(time.Second)))
				rep.HeldSeconds = secs
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Lab-Remote-User", rep.RemoteUser)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rep); err != nil {
			_, _ = io.WriteString(stderr, "encode: "+err.Error()+"\n")
		}
	})
}
