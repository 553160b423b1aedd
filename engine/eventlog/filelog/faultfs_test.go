package filelog

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"sync"
)

var errInjected = errors.New("injected fault")

// faultFS wraps OSFS and fails segment writes and syncs on demand.
type faultFS struct {
	FS
	mu sync.Mutex
	// writeErr, when set, makes the next segment write fail; if short, half
	// of the buffer is written first.
	writeErr bool
	short    bool
	// syncErr makes the next segment sync fail.
	syncErr bool
	// createErr makes the next creation of a segment file fail.
	createErr bool
}

func newFaultFS() *faultFS { return &faultFS{FS: OSFS} }

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	if strings.HasSuffix(name, segSuffix) && flag&os.O_CREATE != 0 {
		f.mu.Lock()
		fail := f.createErr
		f.createErr = false
		f.mu.Unlock()
		if fail {
			return nil, errInjected
		}
	}
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, segSuffix) {
		return file, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *faultFS) set(fn func(*faultFS)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

type faultFile struct {
	File
	fs *faultFS
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	fail, short := f.fs.writeErr, f.fs.short
	f.fs.writeErr = false
	f.fs.mu.Unlock()
	if !fail {
		return f.File.WriteAt(p, off)
	}
	if short {
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, nil
	}
	return 0, errInjected
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	fail := f.fs.syncErr
	f.fs.syncErr = false
	f.fs.mu.Unlock()
	if fail {
		return errInjected
	}
	return f.File.Sync()
}

func (f *faultFile) Allocate(size int64) error {
	if a, ok := f.File.(Allocator); ok {
		return a.Allocate(size)
	}
	return errors.ErrUnsupported
}
