//go:build !unix

package safefiletest

import (
	"errors"
	"os"
)

var errNoFIFO = errors.New("no FIFOs on this system")

func mkfifo(string) error { return errNoFIFO }

func openWriter(string) (*os.File, error) { return nil, errNoFIFO }
