//go:build !linux

package filelog

import (
	"errors"
	"os"
)

func datasync(f *os.File) error { return f.Sync() }

func allocate(f *os.File, size int64) error { return errors.ErrUnsupported }

// lockFile is a no-op where flock is not wired up; the log relies on the
// caller to open a directory once.
func lockFile(f *os.File) error { return nil }
