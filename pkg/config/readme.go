package config

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
)

//go:generate go run ./internal/readmegen ../../README.md

// keyDoc is the README's text for one key (keydocs_data.go).
type keyDoc struct {
	// Default is the default as the README shows it ("empty", "config.json's
	// folder"), which may say more than Key.Default.
	Default string
	// Meaning is the README's markdown for what the key does.
	Meaning string
}

// The README's configuration tables, by the section each key belongs to.
const (
	// READMESEG holds SEG's own settings (clientCertTrustStorePath, kcd.*).
	READMESEG = "seg"
	// READMEGateway holds SEG's custom gateway settings.
	READMEGateway = "gateway"
	// READMESegmesh holds segmesh's own settings (segmesh.*).
	READMESegmesh = "segmesh"
)

// readmeSection is the README table a key is documented in.
func readmeSection(k Key) string {
	switch {
	case k.Gateway:
		return READMEGateway
	case strings.HasPrefix(k.Name, "segmesh."):
		return READMESegmesh
	}
	return READMESEG
}

// READMETables returns the README's configuration tables by section
// (READMESEG, READMEGateway, READMESegmesh), generated from the
// declarations (Keys) and their README text: one row per key in
// declaration order, keys of one parent with the same text sharing a row
// ("`segmesh.edge.serverCertFile` / `serverKeyFile`"). It fails naming a
// declared key without README text, or text for no declared key.
func READMETables() (map[string]string, error) {
	type row struct {
		names []string
		doc   keyDoc
	}
	rows := map[string][]row{}
	seen := map[string]bool{}
	var problems []string
	for _, k := range Keys() {
		d, ok := keyDocs[k.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s has no README text: add it to keyDocs in pkg/config/keydocs_data.go", k.Name))
			continue
		}
		seen[k.Name] = true
		sec := readmeSection(k)
		rs := rows[sec]
		if n := len(rs); n > 0 && rs[n-1].doc == d && parent(rs[n-1].names[0]) == parent(k.Name) {
			rs[n-1].names = append(rs[n-1].names, k.Name)
			continue
		}
		rows[sec] = append(rs, row{names: []string{k.Name}, doc: d})
	}
	for name := range keyDocs {
		if !seen[name] {
			problems = append(problems, fmt.Sprintf("keyDocs documents %s, which is not declared: remove it", name))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, errors.New("config: README tables: " + strings.Join(problems, "; "))
	}
	out := map[string]string{}
	for sec, rs := range rows {
		var b strings.Builder
		b.WriteString("| key | default | meaning |\n| --- | --- | --- |\n")
		for _, r := range rs {
			cells := make([]string, len(r.names))
			for i, n := range r.names {
				if i > 0 {
					n = n[len(parent(n)):]
				}
				cells[i] = "`" + n + "`"
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", strings.Join(cells, " / "), r.doc.Default, r.doc.Meaning)
		}
		out[sec] = b.String()
	}
	return out, nil
}

// parent is a dotted key's prefix up to and including its last dot; "" for
// a key without one.
func parent(name string) string {
	return name[:strings.LastIndex(name, ".")+1]
}

// readmeMarkers returns the lines that open and close a generated table.
func readmeMarkers(sec string) (begin, end string) {
	return "<!-- config keys: " + sec + " (generated from pkg/config's declarations by go generate ./pkg/config: edit keydocs_data.go, not here) -->\n",
		"<!-- end of config keys: " + sec + " -->\n"
}

// UpdateREADME returns readme with each configuration table between its
// markers replaced by READMETables' text; it fails when a table's markers
// are missing.
func UpdateREADME(readme []byte) ([]byte, error) {
	tables, err := READMETables()
	if err != nil {
		return nil, err
	}
	out := readme
	for _, sec := range []string{READMESEG, READMEGateway, READMESegmesh} {
		begin, end := readmeMarkers(sec)
		i := bytes.Index(out, []byte(begin))
		j := bytes.Index(out, []byte(end))
		if i < 0 || j < i {
			return nil, fmt.Errorf("config: README has no %q ... %q around the %s table", strings.TrimSpace(begin), strings.TrimSpace(end), sec)
		}
		var b bytes.Buffer
		b.Write(out[:i+len(begin)])
		b.WriteString(tables[sec])
		b.Write(out[j:])
		out = b.Bytes()
	}
	return out, nil
}
