package k8s_test

import (
	"encoding/json"
	"fmt"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/yaml"
)

// object is one decoded manifest object.
type object struct {
	// ID is "Kind namespace/name".
	ID string
	// Typed is a pointer to the typed struct (*appsv1.Deployment, ...).
	Typed any
}

// newTyped maps apiVersion and kind to the typed struct every object of that
// kind must decode into. A kind not listed here fails the validation: add
// its type when an overlay starts using it.
var newTyped = map[string]func() any{
	"v1/Namespace":                             func() any { return &corev1.Namespace{} },
	"v1/ServiceAccount":                        func() any { return &corev1.ServiceAccount{} },
	"v1/ConfigMap":                             func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                                func() any { return &corev1.Secret{} },
	"v1/Service":                               func() any { return &corev1.Service{} },
	"v1/PersistentVolumeClaim":                 func() any { return &corev1.PersistentVolumeClaim{} },
	"apps/v1/Deployment":                       func() any { return &appsv1.Deployment{} },
	"autoscaling/v2/HorizontalPodAutoscaler":   func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":            func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy":       func() any { return &networkingv1.NetworkPolicy{} },
	"security.istio.io/v1/PeerAuthentication":  func() any { return &istiosecurity.PeerAuthentication{} },
	"security.istio.io/v1/AuthorizationPolicy": func() any { return &istiosecurity.AuthorizationPolicy{} },
	"monitoring.coreos.com/v1/PrometheusRule":  func() any { return &monitoringv1.PrometheusRule{} },
}

// decodeStrict decodes a built resource into its typed struct, failing on
// unknown or duplicate fields. Istio's generated JSON methods accept unknown
// fields in spec (jsonpb AllowUnknownFields), so spec is decoded a second
// time with protojson, which refuses them.
func decodeStrict(r *resource.Resource) (object, error) {
	id := fmt.Sprintf("%s %s/%s", r.GetKind(), r.GetNamespace(), r.GetName())
	y, err := r.AsYAML()
	if err != nil {
		return object{}, fmt.Errorf("%s: %w", id, err)
	}
	key := r.GetApiVersion() + "/" + r.GetKind()
	mk, ok := newTyped[key]
	if !ok {
		return object{}, fmt.Errorf("%s: no typed struct for %s: add it to newTyped", id, key)
	}
	typed := mk()
	if err := yaml.UnmarshalStrict(y, typed); err != nil {
		return object{}, fmt.Errorf("%s: %w", id, err)
	}
	var spec proto.Message
	switch o := typed.(type) {
	case *istiosecurity.PeerAuthentication:
		spec = &o.Spec
	case *istiosecurity.AuthorizationPolicy:
		spec = &o.Spec
	}
	if spec != nil {
		j, err := yaml.YAMLToJSON(y)
		if err != nil {
			return object{}, fmt.Errorf("%s: %w", id, err)
		}
		var doc struct {
			Spec json.RawMessage `json:"spec"`
		}
		if err := json.Unmarshal(j, &doc); err != nil {
			return object{}, fmt.Errorf("%s: %w", id, err)
		}
		if err := (protojson.UnmarshalOptions{}).Unmarshal(doc.Spec, spec); err != nil {
			return object{}, fmt.Errorf("%s: spec: %w", id, err)
		}
	}
	return object{ID: id, Typed: typed}, nil
}
