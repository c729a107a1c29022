package config

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestEveryKeyIsDeclared: every setting of the typed tree says which
// roles read it and what it means.
func TestEveryKeyIsDeclared(t *testing.T) {
	keys := Keys()
	if len(keys) < 50 {
		t.Fatalf("only %d keys declared", len(keys))
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.Name] {
			t.Errorf("%s declared twice", k.Name)
		}
		seen[k.Name] = true
		if k.Help == "" {
			t.Errorf("%s has no help tag", k.Name)
		}
		if len(k.Roles) == 0 {
			t.Errorf("%s has no roles tag", k.Name)
		}
		for _, r := range k.Roles {
			if !slices.Contains(AllRoles, r) {
				t.Errorf("%s: unknown role %q", k.Name, r)
			}
		}
	}
	for _, k := range GatewayKeys() {
		if !seen[k] {
			t.Errorf("custom gateway key %s has no declaration (key tag on a Gateway field)", k)
		}
	}
	for _, s := range Secrets() {
		if !seen[s.Path] {
			t.Errorf("secret %s is not among the keys", s.Path)
		}
	}
	if got := keyByName(t, keys, "segmesh.identity.negativeCacheTtlSeconds").Default; got != "60" {
		t.Errorf("negativeCacheTtlSeconds default %q", got)
	}
	if k := keyByName(t, keys, "kcd.serviceAccountPassword"); !k.Secret {
		t.Error("kcd.serviceAccountPassword is not a secret")
	}
}

func keyByName(t *testing.T, keys []Key, name string) Key {
	t.Helper()
	for _, k := range keys {
		if k.Name == name {
			return k
		}
	}
	t.Fatalf("no key %s", name)
	return Key{}
}

// readmeRow matches a configuration table row: the key cell, the default cell.
var readmeRow = regexp.MustCompile("^\\| (`[^|]+) \\| ([^|]*) \\|")

// readmeKeys returns the keys the README's configuration tables document,
// with their default cells; "`a.b.c` / `d`" documents a.b.c and a.b.d.
func readmeKeys(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	out := map[string]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## Configuration reference"
			continue
		}
		m := readmeRow.FindStringSubmatch(line)
		if !in || m == nil {
			continue
		}
		var first string
		for i, part := range strings.Split(m[1], " / ") {
			name := strings.Trim(strings.TrimSpace(part), "`")
			if i == 0 {
				first = name
			} else if j := strings.LastIndex(first, "."); j >= 0 {
				name = first[:j+1] + name
			}
			out[name] = m[2]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestREADMETablesMatchTheDeclarations: the README documents every
// declared key and no other, each with its default.
func TestREADMETablesMatchTheDeclarations(t *testing.T) {
	doc := readmeKeys(t)
	if len(doc) < 50 {
		t.Fatalf("found only %d keys in README.md's configuration tables", len(doc))
	}
	declared := map[string]bool{}
	for _, k := range Keys() {
		declared[k.Name] = true
		cell, ok := doc[k.Name]
		if !ok {
			t.Errorf("README lacks %s (%s)", k.Name, k.Help)
			continue
		}
		if k.Default == "" {
			continue
		}
		for d := range strings.SplitSeq(k.Default, ",") {
			if !strings.Contains(cell, d) {
				t.Errorf("README gives %s the default %q; declared %q", k.Name, strings.TrimSpace(cell), k.Default)
			}
		}
	}
	for name := range doc {
		if !declared[name] {
			t.Errorf("README documents %s, which is not declared", name)
		}
	}
}
