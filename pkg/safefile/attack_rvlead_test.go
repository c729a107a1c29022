package safefile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAttackReadCheckedSwapDuringCheck (rvlead, session 9, attack on
// 52c961c): a file swapped in at the path while the check runs (after the
// open) is not what ReadPrivate or ReadTrusted returns: the check and the
// read are both on the descriptor opened first. A check by path would
// have passed the private file and then read the attacker's.
func TestAttackReadCheckedSwapDuringCheck(t *testing.T) {
	for _, name := range []string{"ReadPrivate's check", "ReadTrusted's check"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "key")
			if err := os.WriteFile(p, []byte("original"), 0o600); err != nil {
				t.Fatal(err)
			}
			evil := filepath.Join(dir, "evil")
			if err := os.WriteFile(evil, []byte("swapped"), 0o600); err != nil {
				t.Fatal(err)
			}
			check := CheckPrivate
			if name == "ReadTrusted's check" {
				check = CheckReplaceable
			}
			var checked os.FileInfo
			got, err := ReadChecked(p, 1<<10, func(path string, fi os.FileInfo) error {
				checked = fi
				if err := os.Rename(evil, p); err != nil {
					t.Fatal(err)
				}
				return check(path, fi)
			})
			if err != nil {
				t.Fatalf("ReadChecked: %v", err)
			}
			if string(got) != "original" {
				t.Fatalf("read %q after the swap, want the checked file's content", got)
			}
			if checked == nil || checked.Size() != int64(len("original")) {
				t.Fatalf("the check saw %v, not the opened file", checked)
			}
		})
	}
}
