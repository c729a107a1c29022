package rpc

import "strings"

// XFCCHeader is the header (gRPC metadata key) in which Envoy-based meshes
// such as Istio pass the verified client certificate of the connection the
// sidecar terminated.
const XFCCHeader = "x-forwarded-client-cert"

// MeshIdentities returns the URI and DNS values of the last element of an
// x-forwarded-client-cert header (several header values are one list, in
// order). The format is Envoy's: elements separated by commas, key=value
// pairs by semicolons, values optionally double-quoted with \" escapes
// (Subject="CN=a,O=b"). Written here because no maintained Go package
// parses it; it is short and fuzzed.
//
// A header whose quotes are not well formed (a quote that does not follow
// "=", one that is not closed, or a closing quote not followed by ";", ","
// or the end) gives no identity: an element the caller wrote with an open
// quote would otherwise swallow the comma Envoy appends before its own
// element, and the caller's URI would be read as the sidecar's.
func MeshIdentities(values []string) []string {
	header := strings.Join(values, ",")
	if !wellQuoted(header) {
		return nil
	}
	elems := splitQuoted(header, ',')
	for len(elems) > 0 && strings.TrimSpace(elems[len(elems)-1]) == "" {
		elems = elems[:len(elems)-1]
	}
	if len(elems) == 0 {
		return nil
	}
	var ids []string
	for _, pair := range splitQuoted(elems[len(elems)-1], ';') {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			continue
		}
		switch strings.ToLower(k) {
		case "uri", "dns":
			if v = unquote(v); v != "" {
				ids = append(ids, v)
			}
		}
	}
	return ids
}

// wellQuoted reports whether every double quote in s opens right after "="
// and closes (after any \" escapes) right before ";", "," or the end.
func wellQuoted(s string) bool {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case quoted && c == '"':
			if i+1 < len(s) && s[i+1] != ';' && s[i+1] != ',' {
				return false
			}
			quoted = false
		case c == '"':
			if i == 0 || s[i-1] != '=' {
				return false
			}
			quoted = true
		}
	}
	return !quoted
}

// splitQuoted splits s at sep outside double quotes.
func splitQuoted(s string, sep byte) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unquote removes surrounding double quotes and \" escapes.
func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`)
	}
	return v
}
