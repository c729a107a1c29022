package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// The file-level mistakes of an admin editing config.json by hand on
// Windows or from a template, each told apart from a plain syntax error so
// the advice fits (a missing comma is not the cause of any of them).

// fileProblem returns the problem with data as a whole (its encoding, a
// comment), or nil when it is plain UTF-8 JSON text as far as these go.
func fileProblem(data []byte) *Problem {
	p := func(msg, fix string) *Problem {
		return &Problem{Severity: SeverityError, Key: "(file)", Message: msg, Fix: fix}
	}
	switch {
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		return p("the file starts with a UTF-8 byte order mark (Notepad's \"UTF-8 with BOM\"), which JSON does not allow",
			"save it as UTF-8 without BOM (Notepad: Save As, Encoding \"UTF-8\"; PowerShell: Set-Content -Encoding utf8NoBOM)")
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}), bytes.HasPrefix(data, []byte{0xFE, 0xFF}),
		len(data) >= 2 && (data[0] == 0 || data[1] == 0):
		return p("the file is UTF-16 (Notepad's \"Unicode\" encoding); config.json must be UTF-8",
			"save it as UTF-8 (Notepad: Save As, Encoding \"UTF-8\"; PowerShell: Get-Content config.json | Set-Content -Encoding utf8NoBOM config.utf8.json)")
	}
	if line := commentLine(data); line > 0 {
		return p(fmt.Sprintf("line %d holds a comment; JSON has no comments", line),
			"remove the comment (config.json.md, written by segmesh config init, explains each key)")
	}
	return nil
}

// commentLine returns the 1-based line of the first // or /* outside a JSON
// string, or 0.
func commentLine(data []byte) int {
	line, inString, escaped := 1, false, false
	for i := 0; i < len(data); i++ {
		b := data[i]
		switch {
		case b == '\n':
			line++
		case inString && escaped:
			escaped = false
		case inString && b == '\\':
			escaped = true
		case b == '"':
			inString = !inString
		case !inString && b == '/' && i+1 < len(data) && (data[i+1] == '/' || data[i+1] == '*'):
			return line
		}
	}
	return 0
}

// duplicateKeys reports every key that appears twice in one object: JSON
// decoders keep the last silently, so an admin who pasted a block twice
// would run with whichever came last. Keys are named as problems name them
// (kcd.domains[0].domain; a custom gateway setting by its own dotted name).
func duplicateKeys(data []byte, r *Report) {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object bool
		path   string
		seen   map[string]int64 // key → offset of its first appearance
		index  int              // next array element
		key    string           // the key whose value comes next (objects)
	}
	var stack []*frame
	child := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if !f.object {
			p := fmt.Sprintf("%s[%d]", f.path, f.index)
			f.index++
			return p
		}
		switch {
		case f.path == "customGatewaySettings":
			return f.key
		case f.path == "":
			return f.key
		}
		return f.path + "." + f.key
	}
	expectKey := func() bool {
		return len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].key == ""
	}
	for {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return // io.EOF, or a syntax error Parse reports itself
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				p := child()
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].key = ""
				}
				stack = append(stack, &frame{object: d == '{', path: p, seen: map[string]int64{}})
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if expectKey() {
			k, _ := tok.(string)
			f := stack[len(stack)-1]
			if first, dup := f.seen[k]; dup {
				f.key = k
				name := child()
				l1, _ := offsetPosition(data, first)
				l2, _ := offsetPosition(data, off)
				r.add(SeverityError, name, "", fmt.Sprintf("appears twice in the same object (lines %d and %d); only the last would be used", l1, l2),
					"keep one of them")
			} else {
				f.seen[k] = off
			}
			f.key = k
			continue
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].key = ""
		} else if len(stack) > 0 {
			stack[len(stack)-1].index++
		}
	}
}

// offsetPosition converts a byte offset into a 1-based line and column,
// skipping the white space before the token at off.
func offsetPosition(data []byte, off int64) (line, col int) {
	for off < int64(len(data)) && strings.ContainsRune(" \t\r\n,:", rune(data[off])) {
		off++
	}
	line, col = 1, 1
	for _, b := range data[:min(off, int64(len(data)))] {
		if b == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

// jsonWords names a Go type the way config.json's author knows it.
func jsonWords(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.String {
			return `a list of strings in brackets, for example ["https://mail.corp.example"]`
		}
		return "a list in brackets [ ... ]"
	case reflect.String:
		return `a string in quotes`
	case reflect.Bool:
		return "true or false (no quotes)"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Float64:
		return "a number (no quotes)"
	case reflect.Map, reflect.Struct:
		return "an object in braces { ... }"
	}
	if t.Name() == "Secret" {
		return "a string in quotes"
	}
	return t.String()
}

// typeProblem words a json.UnmarshalTypeError for an admin: the key, where,
// what was written and what is wanted, without Go's type names.
func typeProblem(data []byte, te *json.UnmarshalTypeError) Problem {
	line, col := position(data, te)
	got := te.Value
	switch got {
	case "string":
		got = "a string"
	case "number":
		got = "a number"
	case "bool":
		got = "true or false"
	case "array":
		got = "a list"
	case "object":
		got = "an object"
	}
	want := jsonWords(te.Type)
	return Problem{Severity: SeverityError, Key: te.Field, Value: te.Value,
		Message: fmt.Sprintf("is %s at line %d, column %d; it must be %s", got, line, col, want),
		Fix:     "write it as " + want}
}
