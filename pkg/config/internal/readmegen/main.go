// Command readmegen rewrites the configuration tables of the README named
// as its argument from pkg/config's declarations (config.UpdateREADME). It
// is run by go generate ./pkg/config.
package main

import (
	"fmt"
	"os"

	"github.com/segmesh/segmesh/pkg/config"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: readmegen README.md")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "readmegen:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := config.UpdateREADME(b)
	if err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, st.Mode().Perm())
}
