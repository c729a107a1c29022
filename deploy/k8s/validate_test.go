package k8s_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validate builds the overlay in root/overlays/name with the monitoring
// component (components/monitoring: the PrometheusRule) added, as an admin
// running the Prometheus Operator would, decodes every object strictly into
// its typed struct and applies checkRules. It returns every problem found.
func validate(root, name string) []string {
	dir := filepath.Join(root, "with-monitoring", name)
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" +
		"resources: [../../overlays/" + name + "]\ncomponents: [../../components/monitoring]\n"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return []string{err.Error()}
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		return []string{err.Error()}
	}
	objs, bad := decodeAll(dir)
	bad = append(bad, checkRules(objs, name == "split")...)
	bad = append(bad, checkAdminPort(objs)...)
	return append(bad, checkDrain(objs)...)
}

// decodeAll builds the kustomization in dir and decodes every object
// strictly into its typed struct; bad holds what could not be.
func decodeAll(dir string) (objs []object, bad []string) {
	res, err := build(dir)
	if err != nil {
		return nil, []string{err.Error()}
	}
	for _, r := range res {
		o, err := decodeStrict(r)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		objs = append(objs, o)
	}
	return objs, bad
}

// TestOverlaysValidate builds every overlay with kustomize's Go API and
// checks each object strictly against its Kubernetes (or Istio) type and
// segmesh's deployment rules. It needs no cluster, schema download or image.
func TestOverlaysValidate(t *testing.T) {
	root := copyTree(t, ".")
	names := overlays(t, root)
	for _, want := range []string{"all-in-one", "split", "istio"} {
		if !contains(names, want) {
			t.Errorf("overlay %s is missing (found %v)", want, names)
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			for _, p := range validate(root, name) {
				t.Error(p)
			}
		})
	}
}

// TestValidateRejectsBrokenManifests breaks a copy of the manifests in one
// way each and checks that validation names the problem.
func TestValidateRejectsBrokenManifests(t *testing.T) {
	tests := []struct {
		name    string
		overlay string
		file    string // relative to deploy/k8s
		old     string // replaced once
		new     string
		want    string // in one of the problems
	}{
		{"unknown field in a Deployment", "all-in-one", "overlays/all-in-one/deployment.yaml",
			"terminationGracePeriodSeconds: 120", "terminationGracePeriodSeconds: 120\n      terminationGraceSeconds: 120", `unknown field "terminationGraceSeconds"`},
		{"misspelt probe", "all-in-one", "overlays/all-in-one/deployment.yaml",
			"readinessProbe:", "readynessProbe:", "readynessProbe"},
		{"no readiness probe", "all-in-one", "overlays/all-in-one/deployment.yaml",
			"          readinessProbe: {httpGet: {path: /readyz, port: admin}, periodSeconds: 5, timeoutSeconds: 3}\n", "", "no readinessProbe"},
		{"edge probe times out at the default 1 s", "all-in-one", "overlays/all-in-one/deployment.yaml",
			"periodSeconds: 5, timeoutSeconds: 3}", "periodSeconds: 5}", "readinessProbe timeoutSeconds unset (Kubernetes' default, 1) is under 3"},
		{"no PodDisruptionBudget", "all-in-one", "overlays/all-in-one/kustomization.yaml",
			"  - pdb.yaml\n", "", "no PodDisruptionBudget selects its pods"},
		{"runs as root", "all-in-one", "overlays/all-in-one/deployment.yaml",
			"runAsNonRoot: true", "runAsNonRoot: false", "runAsNonRoot is not true"},
		{"no memory request", "all-in-one", "overlays/all-in-one/deployment.yaml",
			"requests: {cpu: 250m, memory: 128Mi}", "requests: {cpu: 250m}", "no memory request"},
		{"no NetworkPolicies", "split", "overlays/split/kustomization.yaml",
			"  - networkpolicy.yaml\n", "", "role ticket: no NetworkPolicy selects its pods"},
		{"unknown field in an Istio spec", "istio", "overlays/istio/mesh.yaml",
			"mtls: {mode: STRICT}", "mtls: {mode: STRICT, strict: true}", `PeerAuthentication segmesh/default: spec: `},
		{"edge pod killed during its drain", "all-in-one", "overlays/all-in-one/deployment.yaml",
			"terminationGracePeriodSeconds: 120", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds 30 is under"},
		{"preStop sleep not counted", "split", "roles/workloads.yaml",
			`args: ["run", "--config", "/etc/segmesh/config.json", "--roles", "edge"]`,
			`args: ["run", "--config", "/etc/segmesh/config.json", "--roles", "edge"]` + "\n          lifecycle: {preStop: {sleep: {seconds: 90}}}",
			"preStop 90 s + drainGraceSeconds 5"},
		{"unknown field in a PrometheusRule", "split", "components/monitoring/prometheusrule.yaml",
			"          for: 5m\n", "          fore: 5m\n", `PrometheusRule segmesh/segmesh: error unmarshaling JSON: while decoding JSON: json: unknown field "fore"`},
		{"alert without a runbook", "all-in-one", "components/monitoring/prometheusrule.yaml",
			"            runbook_url: https://github.com/segmesh/segmesh/blob/main/docs/operations.md#segmeshcrlstale\n", "", "alert SegmeshCRLStale: no runbook_url"},
		{"admin port open to all (NetworkPolicy)", "split", "overlays/split/networkpolicy.yaml",
			"    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]\n      ports: [{port: 9090}]\n",
			"    - ports: [{port: 9090}]\n", "NetworkPolicy segmesh/backends-from-edge ingress[1]: admin port 9090 open to any source"},
		{"admin port open to all (Istio)", "istio", "overlays/istio/mesh.yaml",
			"    - from: [{source: {namespaces: [\"monitoring\"]}}]   # metrics; probes reach the app through the sidecar's agent\n      to:", "    - to:", "AuthorizationPolicy segmesh/identity-from-edge-only rules[1]: admin port 9090 open to any source"},
		{"crl state directory below the claim's root", "all-in-one", "overlays/all-in-one/deployment.yaml",
			"mountPath: /var/lib/segmesh/crl-cache}", "mountPath: /var/lib/segmesh}",
			"segmesh.crl.stateDir /var/lib/segmesh/crl-cache not the mount point of a PersistentVolumeClaim"},
		{"crl state directory a subPath of the claim (rvstate)", "all-in-one", "overlays/all-in-one/deployment.yaml",
			"mountPath: /var/lib/segmesh/crl-cache}", "mountPath: /var/lib/segmesh/crl-cache, subPath: crl-cache}",
			"segmesh.crl.stateDir /var/lib/segmesh/crl-cache is subPath crl-cache of its claim"},
		{"crl state directory on an emptyDir", "split", "roles/workloads.yaml",
			"{name: state, persistentVolumeClaim: {claimName: segmesh-crl-state}}", "{name: state, emptyDir: {}}",
			"segmesh.crl.stateDir /var/lib/segmesh/crl-cache not on a PersistentVolumeClaim"},
		{"a writable volume above the crl state directory", "all-in-one", "overlays/all-in-one/deployment.yaml",
			"      volumes:\n", "            - {name: scratch, mountPath: /var/lib}\n      volumes:\n        - {name: scratch, emptyDir: {}}\n",
			"volume scratch is mounted writable at /var/lib, above segmesh.crl.stateDir"},
		{"unknown kind", "all-in-one", "overlays/all-in-one/pdb.yaml",
			"kind: PodDisruptionBudget", "kind: PodDisruptionBudgets", "no typed struct for policy/v1/PodDisruptionBudgets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := copyTree(t, ".")
			path := filepath.Join(root, tt.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), tt.old) {
				t.Fatalf("%s no longer contains %q: update the test", tt.file, tt.old)
			}
			if err := os.WriteFile(path, []byte(strings.Replace(string(data), tt.old, tt.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			problems := validate(root, tt.overlay)
			for _, p := range problems {
				if strings.Contains(p, tt.want) {
					return
				}
			}
			t.Errorf("validation of the broken %s found %d problems, none with %q:\n%s", tt.overlay, len(problems), tt.want, strings.Join(problems, "\n"))
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
