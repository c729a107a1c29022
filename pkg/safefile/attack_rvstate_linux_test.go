package safefile

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestAttackStateDirChangedAnyway (rvstate, review of istate's CheckDir):
// another local user tries to change what the crl role's state directory
// holds while CheckDir passes it, so that after a restart a floor is gone
// or an older CRL decides. The process is the service user (4242, group
// 4343, as TestCheckDirOwners); "other" is another local user, a member
// of the process's group where the row says so. Rows marked defect were
// accepted on main:
//   - a POSIX ACL granting another user write: the mode's group bits are
//     then the ACL's mask (0770), the group the process's own, and the
//     group rule (meant for Kubernetes' fsGroup) passed it;
//   - a directory or record writable by the process's group, which another
//     local user is in (/etc/group, or that user's primary group): the
//     group rule trusted every member (istate's "left alone");
//   - a setting with ".." after a symbolic link: the kernel resolves
//     link/.. at the link's target, in a directory others may write,
//     while the directories above were checked on the cleaned text.
//
// The other rows held on main and pin that.
func TestAttackStateDirChangedAnyway(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file another owner, and an ACL, needs root")
	}
	const service, other, group = 4242, 54321, 4343
	for _, tt := range []struct {
		name string
		// make returns the setting, given the state directory d (0700,
		// service:group, holding a.crl and kept/k.crl) and root above it.
		make func(t *testing.T, root, d string) string
		want string // in CheckDir's error; "" accepted
	}{
		{"defect: an ACL lets another user write it (mode 0770 of the process's group)", func(t *testing.T, _, d string) string {
			setACLUserWrite(t, d, other)
			return d
		}, "access control list"},
		{"defect: an ACL lets another user write kept/", func(t *testing.T, _, d string) string {
			setACLUserWrite(t, filepath.Join(d, "kept"), other)
			return d
		}, "access control list"},
		{"defect: the setting's '..' leads through a link into a directory others may write", func(t *testing.T, root, _ string) string {
			open := filepath.Join(root, "open")
			mkdirOwned(t, open, 0o777, service, group)
			mkdirOwned(t, filepath.Join(open, "sub"), 0o700, service, group)
			mkdirOwned(t, filepath.Join(open, "state"), 0o700, service, group)
			link(t, filepath.Join(open, "sub"), filepath.Join(root, "link"))
			return filepath.Join(root, "link") + "/../state" // the kernel: open/state
		}, `names ".."`},
		{"defect: 2770 of the process's group, another user a member of it (/etc/group)", func(t *testing.T, _, d string) string {
			fakeUsers(t, "svc:x:4242:4343::/:/bin/false\nalice:x:1000:1000::/:/bin/sh\n", "svc:x:4343:\nalice:x:1000:\n", "ops:x:4343:alice,svc\n")
			chmodT(t, d, 0o770|os.ModeSetgid)
			return d
		}, "has users besides this process's (alice)"},
		{"defect: a record 0664 of the process's group, another user's primary group (/etc/passwd)", func(t *testing.T, _, d string) string {
			fakeUsers(t, "svc:x:4242:4343::/:/bin/false\nbob:x:1001:4343::/:/bin/sh\n", "svc:x:4343:\n")
			chmodT(t, filepath.Join(d, "a.crl"), 0o664)
			return d
		}, "has users besides this process's (bob)"},
		{"held: 2770 of the process's group, no other user in it (the image's segmesh group)", func(t *testing.T, _, d string) string {
			fakeUsers(t, "svc:x:4242:4343::/:/bin/false\n", "svc:x:4343:svc\n")
			chmodT(t, d, 0o770|os.ModeSetgid)
			return d
		}, ""},
		{"held: 2770 of a group of the process no file names (fsGroup of another gid)", func(t *testing.T, _, d string) string {
			fakeUsers(t, "svc:x:4242:4343::/:/bin/false\n", "other:x:999:alice\n")
			chmodT(t, d, 0o770|os.ModeSetgid)
			return d
		}, ""},
		{"held: the same directory without an ACL (0700)", func(t *testing.T, _, d string) string {
			return d
		}, ""},
		{"held: the setting a link, in a directory others may write, to the state directory", func(t *testing.T, root, d string) string {
			open := filepath.Join(root, "open")
			mkdirOwned(t, open, 0o777, service, group)
			link(t, d, filepath.Join(open, "state"))
			return filepath.Join(open, "state")
		}, "has mode 0777"},
		{"held: a symbolic link planted in kept/", func(t *testing.T, root, d string) string {
			link(t, filepath.Join(root, "old.crl"), filepath.Join(d, "kept", "old.crl"))
			return d
		}, "is a symbolic link"},
		{"held: a hard link to another user's file", func(t *testing.T, root, d string) string {
			f := mkfile(t, filepath.Join(root, "theirs.crl"), 0o644)
			if err := os.Lchown(f, other, group); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(f, filepath.Join(d, "b.crl")); err != nil {
				t.Fatal(err)
			}
			return d
		}, "is owned by user 54321"},
		{"held: a record of a member of the process's group, 0644", func(t *testing.T, _, d string) string {
			if err := os.Lchown(filepath.Join(d, "a.crl"), other, group); err != nil {
				t.Fatal(err)
			}
			return d
		}, "is owned by user 54321"},
		{"held: a FIFO record of another user", func(t *testing.T, _, d string) string {
			p := filepath.Join(d, "c.crl")
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(p, other, group); err != nil {
				t.Fatal(err)
			}
			return d
		}, "is owned by user 54321"},
		{"held: not made yet, in a directory its group (the process's) may write", func(t *testing.T, root, _ string) string {
			mkdirOwned(t, filepath.Join(root, "shared"), 0o2770, service, group)
			return filepath.Join(root, "shared", "state")
		}, "group or others may write it"},
		{"'..' without a link: refused too (one rule, the fix names the clean path)", func(t *testing.T, root, _ string) string {
			return filepath.Join(root, "state") + "/../state"
		}, `names ".."`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root, d := stateTree(t, service, service, group)
			if err := os.Chmod(root, 0o755); err != nil {
				t.Fatal(err)
			}
			err := CheckDir(tt.make(t, root, d))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckDir = %v; want nil", err)
				}
				return
			}
			if _, ok := errors.AsType[*ExposedError](err); !ok || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckDir = %v; want an *ExposedError saying %q", err, tt.want)
			}
		})
	}
}

// fakeUsers points /etc/passwd and /etc/group, as CheckDir reads them,
// at passwd and the concatenated groups for the test.
func fakeUsers(t *testing.T, passwd string, groups ...string) {
	t.Helper()
	dir := t.TempDir()
	p, g := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	if err := os.WriteFile(p, []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(g, []byte(strings.Join(groups, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	oldP, oldG := etcPasswd, etcGroup
	etcPasswd, etcGroup = p, g
	t.Cleanup(func() { etcPasswd, etcGroup = oldP, oldG })
}

// mkdirOwned makes dir with mode and the owner uid:gid.
func mkdirOwned(t *testing.T, dir string, mode os.FileMode, uid, gid int) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	// os.Chmod takes Go's mode bits: 0o2000 in the literal is setgid.
	m := mode.Perm()
	if mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if err := os.Chmod(dir, m); err != nil {
		t.Fatal(err)
	}
}

// setACLUserWrite gives uid rwx on path by a POSIX access ACL (what
// `setfacl -m u:UID:rwx path` writes): the mode's group bits become the
// mask, rwx. The test is skipped where the file system keeps no ACL.
func setACLUserWrite(t *testing.T, path string, uid int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	perm := uint16(fi.Mode().Perm())
	const undefined = 0xffffffff
	entries := []struct {
		tag, perm uint16
		id        uint32
	}{
		{0x01, perm >> 6 & 7, undefined}, // ACL_USER_OBJ
		{0x02, 7, uint32(uid)},           // ACL_USER
		{0x04, perm >> 3 & 7, undefined}, // ACL_GROUP_OBJ
		{0x10, 7, undefined},             // ACL_MASK
		{0x20, perm & 7, undefined},      // ACL_OTHER
	}
	b := binary.LittleEndian.AppendUint32(nil, 2) // POSIX_ACL_XATTR_VERSION
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	if err := syscall.Setxattr(path, "system.posix_acl_access", b, 0); err != nil {
		t.Skipf("setting an ACL: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o070 != 0o070 {
		t.Fatalf("after the ACL: %v, %v; want the mask in the group bits", fi.Mode(), err)
	}
}
