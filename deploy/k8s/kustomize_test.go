package k8s_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// placeholderSecrets are the files kept out of git that the overlays'
// secret generators read (scripts/test.sh writes the same for `kustomize build`).
var placeholderSecrets = []string{
	"base/secrets/config.key", "base/secrets/ca01.pem", "base/secrets/edge.pem", "base/secrets/edge.key",
	"overlays/split/secrets/ca.crt",
	"overlays/split/secrets/edge/tls.crt", "overlays/split/secrets/edge/tls.key",
	"overlays/split/secrets/identity/tls.crt", "overlays/split/secrets/identity/tls.key",
	"overlays/split/secrets/ticket/tls.crt", "overlays/split/secrets/ticket/tls.key",
	"overlays/split/secrets/crl/tls.crt", "overlays/split/secrets/crl/tls.key",
}

// copyTree copies the kustomize tree in src (deploy/k8s) to a temporary
// directory with placeholder secret files, and returns the copy's root.
func copyTree(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "k8s")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	for _, f := range placeholderSecrets {
		p := filepath.Join(dst, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("placeholder\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// overlays lists the overlay directories under root/overlays.
func overlays(t testing.TB, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "overlays"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// build runs kustomize (its Go API, as `kustomize build`) on dir and returns
// the resources.
func build(dir string) ([]*resource.Resource, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	return m.Resources(), nil
}
