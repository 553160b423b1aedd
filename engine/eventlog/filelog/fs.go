package filelog

import (
	"io"
	"io/fs"
	"os"
)

// FS is the file-system seam of the log: every file the log touches is
// opened, renamed, removed and synced through it, so tests can inject short
// writes, write errors and failed syncs (see the package tests).
//
// Implementations must be safe for concurrent use.
type FS interface {
	// OpenFile opens name with os.OpenFile semantics.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Remove removes a file.
	Remove(name string) error
	// Rename atomically replaces newname with oldname.
	Rename(oldname, newname string) error
	// ReadDir lists a directory.
	ReadDir(name string) ([]fs.DirEntry, error)
	// MkdirAll creates a directory and its parents.
	MkdirAll(name string, perm fs.FileMode) error
	// SyncDir makes the directory's entries (creations, renames, removals)
	// durable.
	SyncDir(name string) error
	// Lock takes an exclusive, advisory lock on name, creating it, so that
	// two processes never write the same log. Closing the result releases
	// it; so does the death of the process.
	Lock(name string) (io.Closer, error)
}

// File is an open file of an FS.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync makes the file's data durable. For the OS file system it is
	// fdatasync(2) where the platform has it, fsync(2) elsewhere.
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Stat describes the file.
	Stat() (fs.FileInfo, error)
}

// OSFS is the FS of the operating system. It is the default.
var OSFS FS = osFS{}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) Rename(oldname, newname string) error         { return os.Rename(oldname, newname) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) MkdirAll(name string, perm fs.FileMode) error { return os.MkdirAll(name, perm) }

func (osFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (osFS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Allocator is an optional interface of File: a File that implements it can
// reserve disk space ahead of writes. The log preallocates every new segment
// to Options.SegmentSize, so that an append writes inside the file and its
// fdatasync has no file size to commit.
type Allocator interface {
	// Allocate extends the file to at least size bytes, reserving their
	// blocks; the bytes added read as zeros. It never shrinks the file.
	// It returns an error satisfying errors.Is(err, errors.ErrUnsupported)
	// where the platform or file system cannot preallocate.
	Allocate(size int64) error
}

type osFile struct{ *os.File }

func (f osFile) Sync() error { return datasync(f.File) }

func (f osFile) Allocate(size int64) error { return allocate(f.File, size) }
