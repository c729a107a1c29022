package safefile

import (
	"errors"
	"syscall"
)

// hasAccessACL reports whether path has a POSIX access ACL beyond its
// mode (the system.posix_acl_access attribute, which the kernel keeps
// only for a list naming users or groups). A file system without ACLs
// has none; any other error is returned, so the caller refuses what it
// cannot check.
func hasAccessACL(path string) (bool, error) {
	_, err := syscall.Getxattr(path, "system.posix_acl_access", nil)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.ENODATA), errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.EOPNOTSUPP):
		return false, nil
	}
	return false, err
}
