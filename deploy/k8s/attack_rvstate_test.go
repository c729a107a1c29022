package k8s_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// kubeletUmask is the umask kubelet runs with (systemd's default for a
// service): the directories it makes lose group and others' write.
const kubeletUmask = 0o022

// TestAttackCRLStateDirWritableOnAFreshClaim (rvstate, review of istate's
// aacb247): on a fresh claim the crl role must be able to write its state
// directory, or no CRL and no floor outlives a restart (issue 17). kubelet
// applies fsGroup to the claim's root (SetVolumeOwnership: g+rwx,setgid)
// when it mounts the volume, and only then, at the container's start,
// makes a subPath directory that does not exist yet (SafeMakeDir): as
// root, with mkdirat(2) and the root's mode, which its umask cuts to
// 0755, the group inherited from the setgid root (kubernetes#39474,
// #95945). That directory is root's and 2755: the role (runAsUser, in
// fsGroup) cannot create a file in it, and every save failed. On main
// (subPath crl-cache) every crl pod failed this test; the claim's root
// mounted at the state directory is root's, 2775, of fsGroup: the role
// writes it through its group, and safefile.CheckDir passes it
// (TestCRLStateDirPassesOnKubelet).
func TestAttackCRLStateDirWritableOnAFreshClaim(t *testing.T) {
	forEachCRLPod(t, func(t *testing.T, pod corev1.PodSpec, dir string) {
		for _, c := range pod.Containers {
			if !freshClaimWritable(pod, c, dir) {
				t.Errorf("container %s: on a fresh claim kubelet makes %s root's, mode %04o: the crl role (uid %d) cannot write its state directory",
					c.Name, dir, freshStateDirMode(pod, c, dir), runAsUser(pod, c))
			}
		}
	})
}

// freshStateDirMode returns the mode kubelet gives the state directory
// dir on a fresh claim mounted at it: the claim's root (a new file
// system's, 0755, with fsGroup g+rwx,setgid), or, for a subPath, the
// directory SafeMakeDir makes with that mode under kubelet's umask.
// 0 when no volume is mounted at dir.
func freshStateDirMode(pod corev1.PodSpec, c corev1.Container, dir string) os.FileMode {
	i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return filepath.Clean(m.MountPath) == filepath.Clean(dir) })
	if i < 0 {
		return 0
	}
	mode := os.FileMode(0o755)
	if pod.SecurityContext != nil && pod.SecurityContext.FSGroup != nil {
		mode |= 0o2770
	}
	if c.VolumeMounts[i].SubPath != "" {
		mode &^= kubeletUmask
	}
	return mode
}

// freshClaimWritable reports whether container c can create files in
// its state directory dir on a fresh claim: the directory is root's
// either way (a new file system's root, or kubelet's subPath), so c
// writes it through fsGroup's bits or others'.
func freshClaimWritable(pod corev1.PodSpec, c corev1.Container, dir string) bool {
	mode := freshStateDirMode(pod, c, dir)
	inGroup := pod.SecurityContext != nil && pod.SecurityContext.FSGroup != nil
	return runAsUser(pod, c) == 0 || inGroup && mode&0o030 == 0o030 || mode&0o003 == 0o003
}

// runAsUser returns the uid c runs as (the container's, else the pod's;
// -1 when neither says).
func runAsUser(pod corev1.PodSpec, c corev1.Container) int64 {
	if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
		return *c.SecurityContext.RunAsUser
	}
	if pod.SecurityContext != nil && pod.SecurityContext.RunAsUser != nil {
		return *pod.SecurityContext.RunAsUser
	}
	return -1
}
