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
func MeshIdentities(values []string) []string {
	elems := splitQuoted(strings.Join(values, ","), ',')
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
