package k8s_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/segmesh/segmesh/pkg/config"
)

// checkDrain checks that every Deployment running the edge gives its pods
// time to drain: terminationGracePeriodSeconds must cover a preStop sleep
// (if any), the edge's segmesh.edge.drainGraceSeconds read from the
// segmesh-config ConfigMap, and the drain that follows (30 s), or the
// kubelet's SIGKILL cuts the requests still running. Kubernetes' default
// (30 s) is not enough once a grace is set. Its readiness probe must wait
// minEdgeProbeTimeout for /readyz: the edges that stay are the busiest
// while one drains.
func checkDrain(objs []object) []string {
	grace, bad := edgeGrace(objs)
	for _, o := range objs {
		d, ok := o.Typed.(*appsv1.Deployment)
		if !ok {
			continue
		}
		pod := d.Spec.Template.Spec
		for _, c := range pod.Containers {
			if !runsEdge(c.Args) {
				continue
			}
			need := int64(preStopSleep(c) + grace + config.DrainTimeoutSeconds)
			got := int64(30)
			if pod.TerminationGracePeriodSeconds != nil {
				got = *pod.TerminationGracePeriodSeconds
			}
			if got < need {
				bad = append(bad, fmt.Sprintf("Deployment %s/%s container %s runs the edge: terminationGracePeriodSeconds %d is under preStop %d s + drainGraceSeconds %d + drain %d s = %d",
					d.Namespace, d.Name, c.Name, got, preStopSleep(c), grace, config.DrainTimeoutSeconds, need))
			}
			if p := c.ReadinessProbe; p != nil && p.TimeoutSeconds < minEdgeProbeTimeout {
				got := strconv.Itoa(int(p.TimeoutSeconds))
				if p.TimeoutSeconds == 0 {
					got = "unset (Kubernetes' default, 1)"
				}
				bad = append(bad, fmt.Sprintf("Deployment %s/%s container %s runs the edge: readinessProbe timeoutSeconds %s is under %d: an edge taking over a stopping one's phones answered /readyz in up to 1.3 s (bench/drain.sh), and a probe that times out counts against the edge that stays",
					d.Namespace, d.Name, c.Name, got, minEdgeProbeTimeout))
			}
		}
	}
	return bad
}

// minEdgeProbeTimeout is the shortest readiness probe timeout (seconds) of
// a container running the edge (Kubernetes' default is 1).
const minEdgeProbeTimeout = 3

// edgeGrace reads segmesh.edge.drainGraceSeconds from the segmesh-config
// ConfigMap.
func edgeGrace(objs []object) (int, []string) {
	var doc struct {
		Segmesh struct {
			Edge struct {
				DrainGraceSeconds int `json:"drainGraceSeconds"`
			} `json:"edge"`
		} `json:"segmesh"`
	}
	if err := segmeshConfig(objs, &doc); err != nil {
		return 0, []string{err.Error()}
	}
	return doc.Segmesh.Edge.DrainGraceSeconds, nil
}

// segmeshConfig decodes the config.json of the segmesh-config ConfigMap
// among objs into doc.
func segmeshConfig(objs []object, doc any) error {
	for _, o := range objs {
		cm, ok := o.Typed.(*corev1.ConfigMap)
		if !ok || !strings.HasPrefix(cm.Name, "segmesh-config") {
			continue
		}
		if err := json.Unmarshal([]byte(cm.Data["config.json"]), doc); err != nil {
			return fmt.Errorf("ConfigMap %s: config.json: %w", cm.Name, err)
		}
		return nil
	}
	return errors.New("no segmesh-config ConfigMap")
}

// runsEdge reports whether `segmesh` with args runs the edge role.
func runsEdge(args []string) bool {
	i := slices.Index(args, "--roles")
	if i < 0 || i+1 >= len(args) {
		return slices.Contains(args, "run") // --roles defaults to all
	}
	roles := strings.Split(args[i+1], ",")
	return slices.Contains(roles, "edge") || slices.Contains(roles, "all")
}

// preStopSleep is the seconds of a container's preStop sleep action, 0
// without one.
func preStopSleep(c corev1.Container) int {
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		return 0
	}
	return int(c.Lifecycle.PreStop.Sleep.Seconds)
}
