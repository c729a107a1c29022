package refresh_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// crashBetweenTheWrites leaves the record whose DER is file as a crash
// between its two writes can: "" leaves it whole; ", description lost"
// removes its description (a first write whose DER was written and its
// description not, as releases before icrl4 wrote them); ", description of
// the CRL before" leaves a description that no longer matches the DER (the
// DER of one write beside the description of the other).
func crashBetweenTheWrites(t *testing.T, file, crash string) {
	t.Helper()
	desc := strings.TrimSuffix(file, ".crl") + ".json"
	switch crash {
	case "":
	case ", description lost":
		if err := os.Remove(desc); err != nil {
			t.Fatal(err)
		}
	case ", description of the CRL before":
		var m map[string]any
		if err := json.Unmarshal(mustRead(t, desc), &m); err != nil {
			t.Fatal(err)
		}
		m["sha256"] = strings.Repeat("0", 64)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, desc, b)
	default:
		t.Fatalf("crashBetweenTheWrites: unknown state %q", crash)
	}
}
