package config

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestREADMETablesAreGenerated: README.md's configuration tables are what
// READMETables generates from the declarations and keydocs_data.go, so an
// edit of the README alone, a new key without README text, or README text
// of a key that is gone fails here (fix: edit keydocs_data.go and run
// go generate ./pkg/config).
func TestREADMETablesAreGenerated(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := UpdateREADME(readme)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readme, want) {
		got, gen := strings.Split(string(readme), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(got), len(gen)) {
			if got[i] != gen[i] {
				t.Fatalf("README.md line %d differs from the generated tables (edit pkg/config/keydocs_data.go and run go generate ./pkg/config):\nREADME:    %s\ngenerated: %s", i+1, got[i], gen[i])
			}
		}
		t.Fatalf("README.md has %d lines, the generated one %d: run go generate ./pkg/config", len(got), len(gen))
	}
}

// TestREADMETablesRefuseMissingText: a declared key without README text,
// and README text of no declared key, are named; a README without the
// markers is refused.
func TestREADMETablesRefuseMissingText(t *testing.T) {
	const gone = "segmesh.noSuchKey"
	saved, had := keyDocs["segmesh.dnsServer"]
	delete(keyDocs, "segmesh.dnsServer")
	keyDocs[gone] = keyDoc{Default: "x", Meaning: "y"}
	t.Cleanup(func() {
		delete(keyDocs, gone)
		if had {
			keyDocs["segmesh.dnsServer"] = saved
		}
	})
	_, err := READMETables()
	for _, w := range []string{"segmesh.dnsServer has no README text", "keydocs_data.go", gone + ", which is not declared"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("READMETables: %v, want %q", err, w)
		}
	}
	delete(keyDocs, gone)
	keyDocs["segmesh.dnsServer"] = saved
	if _, err := UpdateREADME([]byte("# no tables\n")); err == nil || !strings.Contains(err.Error(), "config keys: seg") {
		t.Errorf("UpdateREADME without markers: %v", err)
	}
}
