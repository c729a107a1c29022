package k8s_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/segmesh/segmesh/pkg/safefile"
)

// configStateDir returns segmesh.crl.stateDir of the segmesh-config
// ConfigMap among objs ("" when none says).
func configStateDir(objs []object) string {
	var doc struct {
		Segmesh struct {
			CRL struct {
				StateDir string `json:"stateDir"`
			} `json:"crl"`
		} `json:"segmesh"`
	}
	_ = segmeshConfig(objs, &doc) // none: "", which stateDirProblems names
	return doc.Segmesh.CRL.StateDir
}

// stateDirProblems checks where a pod running the crl role keeps its state
// directory dir (segmesh.crl.stateDir): on a PersistentVolumeClaim, so
// its last good CRLs and floors outlive a restart (issue 17), its root
// mounted at dir itself (not a subPath, which kubelet makes root's and
// 0755 on a fresh claim: the role cannot write it), with no writable volume
// mounted above it. kubelet makes a volume's root 0777 (emptyDir) or
// g+rwx,setgid (fsGroup), and the crl role refuses a state directory
// below a directory group or others may write (safefile.CheckDir), as
// whoever writes it could replace the state directory with one of theirs.
func stateDirProblems(id string, pod corev1.PodSpec, dir string) []string {
	if dir == "" {
		return []string{id + ": runs the crl role but no config.json names segmesh.crl.stateDir"}
	}
	kinds := map[string]corev1.VolumeSource{}
	for _, v := range pod.Volumes {
		kinds[v.Name] = v.VolumeSource
	}
	var bad []string
	for _, c := range pod.Containers {
		cid := fmt.Sprintf("%s container %s", id, c.Name)
		i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return filepath.Clean(m.MountPath) == filepath.Clean(dir) })
		if i < 0 {
			bad = append(bad, fmt.Sprintf("%s: runs the crl role with segmesh.crl.stateDir %s not the mount point of a PersistentVolumeClaim: its last good CRLs are lost on a restart (issue 17), or it sits below the volume's root, which kubelet makes group-writable and the crl role refuses; mount the claim there (subPath)", cid, dir))
		} else if kinds[c.VolumeMounts[i].Name].PersistentVolumeClaim == nil {
			bad = append(bad, fmt.Sprintf("%s: runs the crl role with segmesh.crl.stateDir %s not on a PersistentVolumeClaim: its last good CRLs are lost on a restart (issue 17)", cid, dir))
		} else if sp := c.VolumeMounts[i].SubPath; sp != "" {
			bad = append(bad, fmt.Sprintf("%s: runs the crl role, and segmesh.crl.stateDir %s is subPath %s of its claim: on a fresh claim kubelet makes it root's and 0755, which the crl role cannot write (no CRL outlives a restart); mount the claim's root there", cid, dir, sp))
		}
		for _, m := range c.VolumeMounts {
			if !m.ReadOnly && strings.HasPrefix(filepath.Clean(dir), filepath.Clean(m.MountPath)+"/") {
				bad = append(bad, fmt.Sprintf("%s: volume %s is mounted writable at %s, above segmesh.crl.stateDir %s: kubelet makes its root group- or world-writable, and the crl role refuses a state directory below it", cid, m.Name, m.MountPath, dir))
			}
		}
	}
	return bad
}

// TestCRLStateDirPassesOnKubelet lays out, for every pod of every overlay
// that runs the crl role, the directories from / to its state directory
// as kubelet and the image make them (kubeletTree), and checks the state
// directory as the crl role does at its start (safefile.CheckDir): it
// must pass. The layout of main before (the claim mounted at
// /var/lib/segmesh, the role making crl-cache in it) is refused: the
// claim's root is g+rwx for fsGroup (the last row).
func TestCRLStateDirPassesOnKubelet(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes are not checked on Windows")
	}
	forEachCRLPod(t, func(t *testing.T, pod corev1.PodSpec, dir string) {
		if err := safefile.CheckDir(kubeletTree(t, pod, pod.Containers[0], dir)); err != nil {
			t.Fatalf("the crl role refuses its state directory on kubelet's volume: %v", err)
		}
	})
	t.Run("main's layout: the claim at /var/lib/segmesh", func(t *testing.T) {
		pod := corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{FSGroup: new(int64(65532))},
			Volumes:         []corev1.Volume{{Name: "state", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "x"}}}},
		}
		c := corev1.Container{VolumeMounts: []corev1.VolumeMount{{Name: "state", MountPath: "/var/lib/segmesh"}}}
		err := safefile.CheckDir(kubeletTree(t, pod, c, "/var/lib/segmesh/crl-cache"))
		if err == nil || !strings.Contains(err.Error(), "has mode 0775") {
			t.Fatalf("CheckDir = %v; want the claim's root (g+rwx for fsGroup) refused", err)
		}
	})
}

// forEachCRLPod runs f, as a subtest named overlay/deployment, for the pod
// of every Deployment of every overlay that runs the crl role, with the
// state directory of the overlay's config.json; it fails when none does.
func forEachCRLPod(t *testing.T, f func(t *testing.T, pod corev1.PodSpec, dir string)) {
	t.Helper()
	root := copyTree(t, ".")
	n := 0
	for _, name := range overlays(t, root) {
		objs, bad := decodeAll(filepath.Join(root, "overlays", name))
		if len(bad) > 0 {
			t.Fatalf("overlay %s: %v", name, bad)
		}
		dir := configStateDir(objs)
		for _, o := range objs {
			d, ok := o.Typed.(*appsv1.Deployment)
			if !ok || !runsCRL(d.Spec.Template.Spec) {
				continue
			}
			n++
			t.Run(name+"/"+d.Name, func(t *testing.T) { f(t, d.Spec.Template.Spec, dir) })
		}
	}
	if n == 0 {
		t.Fatal("no pod runs the crl role")
	}
}

// kubeletTree makes under a temporary directory standing for the
// container's / the directories from / to dir as the container sees them,
// and returns dir's place there:
//   - a directory no volume is mounted at or above: the image's, 0755
//     (deploy/Dockerfile makes /var/lib/segmesh);
//   - a volume's mount point: its root as kubelet makes it, an emptyDir
//     0777 (empty_dir.go's perm), a claim 0755 (a new file system's root),
//     then with the pod's fsGroup the group set to it and g+rwx,setgid
//     added (SetVolumeOwnership); a subPath directory kubelet makes with
//     the mode of the volume's root under its umask (SafeMakeDir; root's,
//     TestAttackCRLStateDirWritableOnAFreshClaim);
//   - a directory below a mount point: the crl role's own, 0700;
//   - in a claim's root, ext4's lost+found (0700, with fsGroup 2770).
//
// The process is in fsGroup (kubelet adds it to every container's groups):
// the tree's group is then the test process's own.
func kubeletTree(t *testing.T, pod corev1.PodSpec, c corev1.Container, dir string) string {
	t.Helper()
	vols := map[string]corev1.VolumeSource{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v.VolumeSource
	}
	fsGroup := pod.SecurityContext != nil && pod.SecurityContext.FSGroup != nil
	top := t.TempDir()
	t.Cleanup(func() {
		_ = filepath.Walk(top, func(p string, _ os.FileInfo, _ error) error { return os.Chmod(p, 0o700) })
	})
	below := false
	cur := top
	for _, name := range strings.Split(strings.Trim(filepath.Clean(dir), "/"), "/") {
		cur = filepath.Join(cur, name)
		mode := os.FileMode(0o755)
		i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return filepath.Join(top, m.MountPath) == cur })
		switch {
		case i >= 0:
			below = true
			if vols[c.VolumeMounts[i].Name].EmptyDir != nil {
				mode = 0o777
			}
			if fsGroup {
				mode |= 0o770 | os.ModeSetgid
			}
			if c.VolumeMounts[i].SubPath != "" {
				mode &^= kubeletUmask // SafeMakeDir's mkdirat, as root
			}
		case below:
			mode = 0o700
		}
		if err := os.Mkdir(cur, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(cur, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(cur, -1, os.Getegid()); err != nil {
			t.Fatal(err)
		}
		if i >= 0 && c.VolumeMounts[i].SubPath == "" && vols[c.VolumeMounts[i].Name].PersistentVolumeClaim != nil {
			// A claim's root on ext4 holds lost+found, 0700, which fsGroup
			// makes 2770 of the pod's group (rvstate): CheckDir walks it.
			lf, lfMode := filepath.Join(cur, "lost+found"), os.FileMode(0o700)
			if fsGroup {
				lfMode |= 0o070 | os.ModeSetgid
			}
			if err := os.Mkdir(lf, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(lf, lfMode); err != nil {
				t.Fatal(err)
			}
		}
	}
	return cur
}
