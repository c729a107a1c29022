package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// labCmd runs deploy/lab/lab.sh with the given arguments. The script is
// found through SEGMESH_LAB_SCRIPT, else by walking up from the working
// directory to the repository holding deploy/lab/lab.sh.
func labCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	script, err := findLabScript()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return errReported
		}
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

func findLabScript() (string, error) {
	if p := os.Getenv("SEGMESH_LAB_SCRIPT"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "deploy", "lab", "lab.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("lab: deploy/lab/lab.sh not found above the working directory; run from the segmesh repository or set SEGMESH_LAB_SCRIPT")
		}
		dir = parent
	}
}
