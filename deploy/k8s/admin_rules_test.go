package k8s_test

import (
	"fmt"

	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// adminPort is segmesh's admin port: plain HTTP serving /metrics, /status
// and /status.json.
const adminPort = 9090

// checkAdminPort returns every rule that lets any source reach the admin
// port: a NetworkPolicy ingress rule naming the port (or all ports) with no
// "from", or an Istio AuthorizationPolicy ALLOW rule naming the port with
// no "from".
func checkAdminPort(objs []object) []string {
	var bad []string
	for _, o := range objs {
		switch v := o.Typed.(type) {
		case *networkingv1.NetworkPolicy:
			for i, r := range v.Spec.Ingress {
				if len(r.From) == 0 && coversPort(r.Ports) {
					bad = append(bad, fmt.Sprintf("NetworkPolicy %s/%s ingress[%d]: admin port %d open to any source (add from: the monitoring namespace)", v.Namespace, v.Name, i, adminPort))
				}
			}
		case *istiosecurity.AuthorizationPolicy:
			for i, r := range v.Spec.GetRules() {
				if len(r.GetFrom()) > 0 {
					continue
				}
				for _, to := range r.GetTo() {
					for _, p := range to.GetOperation().GetPorts() {
						if p == fmt.Sprint(adminPort) {
							bad = append(bad, fmt.Sprintf("AuthorizationPolicy %s/%s rules[%d]: admin port %d open to any source (add from: the monitoring namespace)", v.Namespace, v.Name, i, adminPort))
						}
					}
				}
			}
		}
	}
	return bad
}

// coversPort reports whether ports include the admin port (an empty list
// means every port).
func coversPort(ports []networkingv1.NetworkPolicyPort) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Port == nil || p.Port.IntValue() == adminPort || p.Port.String() == "admin" {
			return true
		}
	}
	return false
}
