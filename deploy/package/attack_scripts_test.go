package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestAttackPostinstallSymlink: postinstall runs as root, while
// /etc/segmesh belongs to the service user. A service user who has taken
// over segmesh can swap the config.json that `segmesh config init` has just
// written for a symbolic link to a file of root's (/etc/shadow, a sudoers
// drop-in) before the script's chown and chmod, which then follow the link:
// root's file becomes the service user's. The fake `segmesh` here wins that
// race every time (it leaves the link); the victim file must keep its owner
// and mode. System commands (getent, install, systemctl, Debian's helpers)
// are fakes on PATH, so the test changes nothing on the machine. Attacker
// review of the package scripts.
func TestAttackPostinstallSymlink(t *testing.T) {
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc-segmesh")
	victim := filepath.Join(dir, "victim")
	bin := filepath.Join(dir, "bin")
	for _, d := range []string{etc, bin} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(victim, []byte("root's secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The service user's ids: nobody's when root can give them, else ours.
	owner := strconv.Itoa(os.Getuid()) + ":" + strconv.Itoa(os.Getgid())
	if os.Getuid() == 0 {
		owner = "65534:65534"
	}
	realChown, err := exec.LookPath("chown")
	if err != nil {
		t.Fatal(err)
	}
	fakes := map[string]string{
		"getent": "exit 0", "groupadd": "exit 0", "useradd": "exit 0", "systemctl": "exit 0",
		"deb-systemd-helper": "exit 0", "deb-systemd-invoke": "exit 0",
		"install": `for a; do last=$a; done; mkdir -p "$last"`,
		// config init as the CLI does it, then the attacker's swap.
		"segmesh": `printf '{}' >"$3"; printf 'notes' >"$3.md"; rm -f "$3"; ln -s ` + victim + ` "$3"`,
		// chown with the service user's name mapped to ids that exist here.
		"chown": `args=""; for a; do case "$a" in segmesh:segmesh) a=` + owner + `;; esac; args="$args '$a'"; done; eval exec ` + realChown + ` $args`,
	}
	for name, body := range fakes {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script, err := os.ReadFile("scripts/postinstall.sh")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "postinstall.sh")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(script), "/etc/segmesh", etc)), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", path, "configure")
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Logf("postinstall: %v\n%s", err, out)
	}
	st, err := os.Stat(victim)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if int(sys.Uid) != os.Getuid() || int(sys.Gid) != os.Getgid() {
		t.Errorf("postinstall followed the link: the victim now belongs to %d:%d", sys.Uid, sys.Gid)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("postinstall followed the link: the victim's mode is now %o", st.Mode().Perm())
	}
}
