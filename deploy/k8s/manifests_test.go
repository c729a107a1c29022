// Package k8s_test checks the Kubernetes manifests' configuration files:
// each overlay's config.json must pass the same loader `segmesh run` uses.
package k8s_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

func TestOverlayConfigsLoad(t *testing.T) {
	files, err := filepath.Glob("*/*/config.json")
	if err != nil {
		t.Fatal(err)
	}
	base, _ := filepath.Glob("base/config.json")
	files = append(files, base...)
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// The examples carry a placeholder for the encrypted password.
			doc := strings.Replace(string(data), "enc:v1:REPLACE-with-the-output-of-segmesh-run-on-a-.plaintext-value", "example", 1)
			_, report, err := config.Parse(f, []byte(doc))
			if err != nil {
				t.Fatalf("%s does not load: %v", f, err)
			}
			for _, p := range report.Problems {
				if p.Severity == config.SeverityIgnored {
					t.Errorf("%s: a setting is ignored: %s", f, p)
				}
			}
		})
	}
}
