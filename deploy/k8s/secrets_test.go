package k8s_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/segmesh/segmesh/pkg/config"
)

// hashSuffix is what kustomize appends to a generated Secret's name.
var hashSuffix = regexp.MustCompile(`-[a-z0-9]{10}$`)

// mountedSecrets returns the Secrets a pod template reads (volumes,
// projected sources, env and envFrom), without kustomize's hash suffix.
func mountedSecrets(pod corev1.PodSpec) []string {
	seen := map[string]bool{}
	add := func(n string) { seen[hashSuffix.ReplaceAllString(n, "")] = true }
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			add(v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					add(s.Secret.Name)
				}
			}
		}
	}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				add(e.ValueFrom.SecretKeyRef.Name)
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				add(e.SecretRef.Name)
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// needsKey reports whether a process running role must decrypt one of the
// secrets set in the overlay's config.json, by the secrets' own
// declarations (config.Secrets): only then may its pod hold the key.
func needsKey(t *testing.T, doc map[string]any, role string) bool {
	t.Helper()
	for _, d := range config.Secrets() {
		var v any = doc
		for k := range strings.SplitSeq(d.Path, ".") {
			m, _ := v.(map[string]any)
			v = m[k]
		}
		if s, _ := v.(string); s != "" && slices.Contains(d.Roles, role) {
			return true
		}
	}
	return false
}

// TestSplitMountsEachSecretOnlyWhereUsed: in the split and istio overlays
// each role's pod mounts only the Secrets its role reads. The secrets key
// goes only to roles that decrypt a secret set in config.json (identity,
// ticket: the service account password); the edge's TLS key only to the
// edge; the trust store to edge and crl. Before, every pod had the key and
// the edge's private key, so the internet-facing edge could decrypt the
// KCD service account's password.
func TestSplitMountsEachSecretOnlyWhereUsed(t *testing.T) {
	root := copyTree(t, ".")
	for _, overlay := range []string{"split", "istio"} {
		t.Run(overlay, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(root, "overlays", overlay, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			res, err := build(filepath.Join(root, "overlays", overlay))
			if err != nil {
				t.Fatal(err)
			}
			var deps []*appsv1.Deployment
			for _, r := range res {
				o, err := decodeStrict(r)
				if err != nil {
					t.Fatal(err)
				}
				if d, ok := o.Typed.(*appsv1.Deployment); ok {
					deps = append(deps, d)
				}
			}
			uses := map[string][]string{
				"edge": {"segmesh-edge-tls", "segmesh-trust"}, "crl": {"segmesh-trust"},
				"identity": nil, "ticket": nil,
			}
			for _, role := range roles {
				d := deploymentOf(deps, role)
				if d == nil {
					t.Fatalf("no Deployment for %s", role)
				}
				want := slices.Clone(uses[role])
				if overlay == "split" {
					want = append(want, "segmesh-rpc-"+role)
				}
				if needsKey(t, doc, role) {
					want = append(want, "segmesh-secrets")
				}
				sort.Strings(want)
				if got := mountedSecrets(d.Spec.Template.Spec); !slices.Equal(got, want) {
					t.Errorf("%s mounts %v, want %v", role, got, want)
				}
				for _, c := range d.Spec.Template.Spec.Containers {
					for _, e := range c.Env {
						if strings.HasPrefix(e.Name, "SEGMESH_CONFIG_KEY") && !needsKey(t, doc, role) {
							t.Errorf("%s sets %s but decrypts no secret", role, e.Name)
						}
					}
				}
			}
		})
	}
}
