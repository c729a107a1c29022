package config

import (
	"encoding/json"
	"fmt"
)

// secretTypeProblems returns a problem for each secret whose value is not
// a string (a number, true or false, an object, a list), naming the key,
// where its value is and the fix, never the value. secret.Secret's own
// decoding refuses such a value too, but without the key: it sees only its
// own bytes. Nil when every secret is a string or null, or the document is
// not JSON (the decoder's error says where).
func secretTypeProblems(data []byte) []Problem {
	spans, err := findSecretSpans(data)
	if err != nil {
		return nil
	}
	var out []Problem
	for _, sp := range spans {
		if sp.kind == "" {
			continue
		}
		line, col := offsetPosition(data, int64(sp.start))
		out = append(out, Problem{Severity: SeverityError, Key: sp.path, Value: sp.kind,
			Message: fmt.Sprintf("is %s at line %d, column %d; a secret must be a string in quotes", sp.kind, line, col),
			Fix: fmt.Sprintf(`write it as a string in quotes with the suffix %s, for example "%s": "…%s" (it is encrypted at the next start)`,
				PlaintextSuffix, lastKey(sp.path), PlaintextSuffix)})
	}
	return out
}

// otherKind names a JSON token that starts a value other than a string or
// null, in an admin's words; "" for a string, null, or a closing delimiter.
func otherKind(tok json.Token) string {
	switch t := tok.(type) {
	case float64, json.Number:
		return "a number"
	case bool:
		return "true or false"
	case json.Delim:
		switch t {
		case '{':
			return "an object"
		case '[':
			return "a list"
		}
	}
	return ""
}

// valueStart returns the offset of the value that follows off (past the
// colon and white space after a key).
func valueStart(data []byte, off int) int {
	for off < len(data) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ':':
			off++
		default:
			return off
		}
	}
	return off
}

// lastKey is the last element of a dotted key path.
func lastKey(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '.' {
			return path[i+1:]
		}
	}
	return path
}
