package safefile_test

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/safefile"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

func TestCheckPrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes and owners are not checked on Windows")
	}
	const other = 54321 // a user that is neither root nor this process's
	for _, tt := range []struct {
		name    string
		mode    os.FileMode // the file's
		dirMode os.FileMode // the directory's
		chown   int         // the file's owner when >= 0 (needs root)
		dirOwn  int         // the directory's owner when >= 0 (needs root)
		want    string      // "" accepted; else in the error
		fix     string
	}{
		{"0600 in 0700", 0o600, 0o700, -1, -1, "", ""},
		{"0400 in 0755", 0o400, 0o755, -1, -1, "", ""},
		{"0440: the group may read", 0o440, 0o750, -1, -1, "", ""},
		{"others may read", 0o604, 0o700, -1, -1, "has mode 0604", "chmod 600"},
		{"group may write", 0o620, 0o700, -1, -1, "has mode 0620", "chmod 600"},
		{"directory group-writable", 0o600, 0o770, -1, -1, "has mode 0770: group or others may write it", "chmod go-w"},
		{"directory sticky and world-writable, the file ours", 0o600, 0o777 | os.ModeSticky, -1, -1, "", ""},
		// Its owner is refused first, also as root (the sticky rule is
		// TestCheckReplaceable's, for a link another user owns).
		{"directory sticky and world-writable, the file another user's", 0o600, 0o777 | os.ModeSticky, other, -1, "is owned by user 54321", "chown"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := safefiletest.Tree{File: tt.mode, Dir: tt.dirMode, FileOwner: max(tt.chown, 0), DirOwner: max(tt.dirOwn, 0)}.Make(t, "d", "secret", []byte("k"))
			f, fi, err := safefile.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			err = safefile.CheckPrivate(p, fi)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckPrivate = %v; want nil", err)
				}
				return
			}
			var e *safefile.ExposedError
			if !errors.As(err, &e) || !errors.Is(err, safefile.ErrExposed) {
				t.Fatalf("CheckPrivate = %v; want an *ExposedError", err)
			}
			if !strings.Contains(e.Error(), tt.want) || !strings.Contains(e.Fix, tt.fix) {
				t.Fatalf("CheckPrivate = %q (fix %q); want %q and a fix with %q", e.Error(), e.Fix, tt.want, tt.fix)
			}
			if !strings.Contains(e.About(p), tt.want) {
				t.Errorf("About = %q; want %q", e.About(p), tt.want)
			}
		})
	}
}
