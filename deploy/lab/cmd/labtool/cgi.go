package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cgi"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// maxHold bounds ?hold=SECONDS (an EAS Ping lasts at most 3540 s).
const maxHold = 3600

// maxSize bounds ?size=BYTES (EWS attachments reach 64 MB).
const maxSize = 1 << 30

// patternLen is the length of the repeated download pattern: byte i of a
// ?size= body is byte(i % patternLen), a prime so it never lines up with
// buffer sizes.
const patternLen = 251

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
	return cgi.Serve(echoHandler(os.Getenv, time.Sleep, os.TempDir(), stderr))
}

// echoHandler answers what arrived. getenv reads the CGI variables Apache
// sets (REMOTE_USER, AUTH_TYPE, GSS_NAME, HTTPS); sleep holds a ?hold= request.
//
// Tests of a proxy choose the answer with query parameters:
//   - status=N answers N (with the JSON body), for example 449, 451 or 503;
//   - header=Name:Value (repeatable) adds a response header, such as
//     X-MS-Location or Retry-After;
//   - once=KEY (with status) answers N only to the first request naming KEY
//     (a file in onceDir remembers it); later ones answer normally, so a
//     401 followed by a retry can be shown;
//   - size=BYTES answers BYTES bytes of a fixed pattern (byte i is
//     i % 251) instead of JSON, for download tests.
func echoHandler(getenv func(string) string, sleep func(time.Duration), onceDir string, stderr io.Writer) http.Handler {
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
		q := r.URL.Query()
		w.Header().Set("X-Lab-Remote-User", rep.RemoteUser)
		for _, hv := range q["header"] {
			if k, v, ok := strings.Cut(hv, ":"); ok && k != "" {
				w.Header().Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
		}
		status := chosenStatus(q.Get("status"), q.Get("once"), onceDir)
		if s := q.Get("size"); s != "" {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 && n <= maxSize {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
				w.WriteHeader(status)
				if err := writePattern(w, n); err != nil {
					_, _ = io.WriteString(stderr, "write pattern: "+err.Error()+"\n")
				}
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rep); err != nil {
			_, _ = io.WriteString(stderr, "encode: "+err.Error()+"\n")
		}
	})
}

// chosenStatus is the status asked for with ?status=, or 200. With a once
// key, only the request that creates the key's file gets it.
func chosenStatus(s, once, onceDir string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 200 || n > 599 {
		return http.StatusOK
	}
	if once == "" {
		return n
	}
	for _, c := range once {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return http.StatusOK
		}
	}
	f, err := os.OpenFile(filepath.Join(onceDir, "labcgi-once-"+once), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return http.StatusOK
	}
	_ = f.Close()
	return n
}

// writePattern writes n bytes of the download pattern.
func writePattern(w io.Writer, n int64) error {
	buf := make([]byte, 64*patternLen)
	for i := range buf {
		buf[i] = byte(i % patternLen)
	}
	for n > 0 {
		chunk := buf[:min(n, int64(len(buf)))]
		m, err := w.Write(chunk)
		if err != nil {
			return err
		}
		n -= int64(m)
	}
	return nil
}
