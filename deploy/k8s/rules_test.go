package k8s_test

import (
	"fmt"
	"slices"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// roles are segmesh's roles; in the split overlay each runs in its own
// Deployment labelled app.kubernetes.io/component=<role>.
var roles = []string{"crl", "identity", "ticket", "edge"}

// componentLabel names a workload's role.
const componentLabel = "app.kubernetes.io/component"

// checkRules applies segmesh's own rules to an overlay's decoded objects and
// returns every violation: each Deployment's containers have liveness and
// readiness probes and CPU and memory requests, its pods run as non-root,
// and a PodDisruptionBudget selects them; with perRoleNetworkPolicy, every
// role's pods are selected by a NetworkPolicy aimed at them (not only the
// namespace-wide default deny).
func checkRules(objs []object, perRoleNetworkPolicy bool) []string {
	var deps []*appsv1.Deployment
	var pdbs []*policyv1.PodDisruptionBudget
	var nps []*networkingv1.NetworkPolicy
	var rules []*monitoringv1.PrometheusRule
	for _, o := range objs {
		switch v := o.Typed.(type) {
		case *monitoringv1.PrometheusRule:
			rules = append(rules, v)
		case *appsv1.Deployment:
			deps = append(deps, v)
		case *policyv1.PodDisruptionBudget:
			pdbs = append(pdbs, v)
		case *networkingv1.NetworkPolicy:
			nps = append(nps, v)
		}
	}
	stateDir := configStateDir(objs)
	var bad []string
	if len(deps) == 0 {
		bad = append(bad, "no Deployment")
	}
	for _, d := range deps {
		id := "Deployment " + d.Namespace + "/" + d.Name
		pod := d.Spec.Template.Spec
		if len(pod.Containers) == 0 {
			bad = append(bad, id+": no container")
		}
		for _, c := range pod.Containers {
			cid := fmt.Sprintf("%s container %s", id, c.Name)
			if c.LivenessProbe == nil {
				bad = append(bad, cid+": no livenessProbe")
			}
			if c.ReadinessProbe == nil {
				bad = append(bad, cid+": no readinessProbe")
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
					bad = append(bad, fmt.Sprintf("%s: no %s request", cid, r))
				}
			}
			if !runsAsNonRoot(pod.SecurityContext, c.SecurityContext) {
				bad = append(bad, cid+": runAsNonRoot is not true (pod or container securityContext)")
			}
		}
		if runsCRL(pod) {
			bad = append(bad, stateDirProblems(id, pod, stateDir)...)
		}
		podLabels := labels.Set(d.Spec.Template.Labels)
		if !anyPDBSelects(pdbs, d.Namespace, podLabels) {
			bad = append(bad, id+": no PodDisruptionBudget selects its pods")
		}
	}
	bad = append(bad, checkAlerts(rules)...)
	if perRoleNetworkPolicy {
		for _, role := range roles {
			d := deploymentOf(deps, role)
			if d == nil {
				bad = append(bad, fmt.Sprintf("no Deployment with %s=%s", componentLabel, role))
				continue
			}
			if !anyPolicySelects(nps, d.Namespace, labels.Set(d.Spec.Template.Labels)) {
				bad = append(bad, fmt.Sprintf("role %s: no NetworkPolicy selects its pods (besides a namespace-wide one)", role))
			}
		}
	}
	return bad
}

// checkAlerts requires one PrometheusRule (components/monitoring) whose
// alerts each have a severity, a summary and a runbook_url. Their PromQL
// and series are checked by deploy/monitoring's test.
func checkAlerts(rules []*monitoringv1.PrometheusRule) []string {
	if len(rules) != 1 {
		return []string{fmt.Sprintf("%d PrometheusRules, want the one of components/monitoring", len(rules))}
	}
	var bad []string
	n := 0
	for _, g := range rules[0].Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			for _, k := range []string{"summary", "runbook_url"} {
				if r.Annotations[k] == "" {
					bad = append(bad, fmt.Sprintf("alert %s: no %s annotation", r.Alert, k))
				}
			}
			if r.Labels["severity"] == "" {
				bad = append(bad, fmt.Sprintf("alert %s: no severity label", r.Alert))
			}
		}
	}
	if n == 0 {
		bad = append(bad, "PrometheusRule has no alert")
	}
	return bad
}

func runsAsNonRoot(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) bool {
	if c != nil && c.RunAsNonRoot != nil {
		return *c.RunAsNonRoot
	}
	return pod != nil && pod.RunAsNonRoot != nil && *pod.RunAsNonRoot
}

func anyPDBSelects(pdbs []*policyv1.PodDisruptionBudget, ns string, pod labels.Set) bool {
	for _, p := range pdbs {
		if p.Namespace != ns || p.Spec.Selector == nil {
			continue
		}
		if selects(p.Spec.Selector, pod) {
			return true
		}
	}
	return false
}

// anyPolicySelects reports whether a NetworkPolicy with a non-empty pod
// selector selects the pod labels.
func anyPolicySelects(nps []*networkingv1.NetworkPolicy, ns string, pod labels.Set) bool {
	for _, p := range nps {
		s := p.Spec.PodSelector
		if p.Namespace != ns || (len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0) {
			continue
		}
		if selects(&s, pod) {
			return true
		}
	}
	return false
}

func selects(ls *metav1.LabelSelector, pod labels.Set) bool {
	sel, err := metav1.LabelSelectorAsSelector(ls)
	return err == nil && !sel.Empty() && sel.Matches(pod)
}

func deploymentOf(deps []*appsv1.Deployment, role string) *appsv1.Deployment {
	for _, d := range deps {
		if d.Spec.Template.Labels[componentLabel] == role {
			return d
		}
	}
	return nil
}

// runsCRL reports whether a container of pod runs the crl role
// (--roles all or a list naming crl).
func runsCRL(pod corev1.PodSpec) bool {
	for _, c := range pod.Containers {
		for i, a := range c.Args {
			if a == "--roles" && i+1 < len(c.Args) && slices.ContainsFunc(strings.Split(c.Args[i+1], ","), func(r string) bool { return r == "all" || r == "crl" }) {
				return true
			}
		}
	}
	return false
}
