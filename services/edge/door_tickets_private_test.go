package edge

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestAttackTicketKeyDirectoryWritable: the session ticket key file was
// refused when its own mode let others read it or group or others write
// it, but not when the directory holding it (or holding the file a link
// leads to) let them replace it: whoever writes the directory renames
// their own key over the file, and the edges then encrypt tickets under a
// key that user holds. It is refused as OpenSSH's StrictModes refuse such
// a directory, naming the directory and the fix; a /tmp-like directory
// (the sticky bit) holding a file of this user's is accepted, as another
// user cannot replace that file there. On main each was accepted.
func TestAttackTicketKeyDirectoryWritable(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes and owners are not checked on Windows")
	}
	k := newTicketKey(t)
	for _, tc := range []struct {
		name string
		make func(t *testing.T, root string) string // returns the path named
		want string                                 // "" accepted
	}{
		{"a 0700 directory", func(t *testing.T, root string) string {
			return writeTicketKeys(t, filepath.Join(root, "tickets.key"), k)
		}, ""},
		{"a 0777 directory", func(t *testing.T, root string) string {
			chmod(t, root, 0o777)
			return writeTicketKeys(t, filepath.Join(root, "tickets.key"), k)
		}, "has mode 0777: group or others may write it"},
		{"a 0775 directory", func(t *testing.T, root string) string {
			chmod(t, root, 0o775)
			return writeTicketKeys(t, filepath.Join(root, "tickets.key"), k)
		}, "has mode 0775"},
		{"a sticky 1777 directory, the file this user's", func(t *testing.T, root string) string {
			chmod(t, root, 0o777|os.ModeSticky)
			return writeTicketKeys(t, filepath.Join(root, "tickets.key"), k)
		}, ""},
		{"a link in a 0700 directory to a file in a 0777 one", func(t *testing.T, root string) string {
			open := filepath.Join(root, "open")
			if err := os.Mkdir(open, 0o700); err != nil {
				t.Fatal(err)
			}
			chmod(t, open, 0o777)
			target := writeTicketKeys(t, filepath.Join(open, "tickets.key"), k)
			link := filepath.Join(root, "tickets.key")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, "open (the directory holding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "keys")
			if err := os.Mkdir(root, 0o700); err != nil {
				t.Fatal(err)
			}
			path := tc.make(t, root)
			_, err := readTicketKeys(path)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), keyTicketKeyFile) ||
				!strings.Contains(err.Error(), "chmod go-w") {
				t.Fatalf("got %v; want a refusal of %s saying %q and the chmod that fixes it", err, keyTicketKeyFile, tc.want)
			}
		})
	}
}

// chmod sets mode on path (past the umask).
func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
