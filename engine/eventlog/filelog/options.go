package filelog

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults of Options.
const (
	// DefaultSegmentSize is the size at which a segment is sealed and the
	// next one started.
	DefaultSegmentSize = 64 << 20
	// DefaultMaxBatchBytes is the encoded size the writer gathers from
	// queued appends into one write and one sync.
	DefaultMaxBatchBytes = 8 << 20
	// DefaultIndexInterval is the distance in bytes between entries of the
	// sparse position/time index.
	DefaultIndexInterval = 64 << 10

	// MinSegmentSize is the smallest SegmentSize Validate accepts.
	MinSegmentSize = 1 << 10
)

// Options configures a Log. The zero value means defaults throughout.
type Options struct {
	// SegmentSize is the size in bytes past which the active segment is
	// sealed and a new one started. A batch larger than it gets a segment of
	// its own. Default DefaultSegmentSize (64 MiB); at least MinSegmentSize.
	SegmentSize int64

	// MaxBatchBytes bounds the encoded bytes of the appends the writer
	// gathers into one write and one sync (group commit). A single append
	// larger than it is written alone. Default DefaultMaxBatchBytes (8 MiB).
	MaxBatchBytes int

	// IndexInterval is the number of bytes between entries of the sparse
	// index from position and time to file offset: a read starts scanning at
	// most about this far before its target. Default DefaultIndexInterval
	// (64 KiB).
	IndexInterval int

	// FS is the file system the log lives in. Default OSFS.
	FS FS

	// Now is the clock stamping appended batches. Default time.Now. The log
	// never lets times go backwards, whatever Now returns.
	Now func() time.Time

	// NoSync skips every fdatasync/fsync. An acknowledged append then
	// survives a process crash (the data is in the page cache) but NOT a
	// power failure or kernel crash. For tests and benchmark setup only;
	// never set it for a system of record.
	NoSync bool

	// Logger receives the report of what recovery did on Open (a cut torn
	// tail, rebuilt index files) and warnings the log cannot return to a
	// caller (a sealed segment's index file that could not be written).
	// Default slog.Default().
	Logger *slog.Logger

	// noAllocate turns segment preallocation off, for benchmarks.
	noAllocate bool
}

// Validate reports whether the options are usable. Zero values are valid.
func (o *Options) Validate() error {
	var errs []error
	if o.SegmentSize != 0 && o.SegmentSize < MinSegmentSize {
		errs = append(errs, fmt.Errorf("filelog: SegmentSize %d below %d", o.SegmentSize, MinSegmentSize))
	}
	if o.MaxBatchBytes < 0 {
		errs = append(errs, fmt.Errorf("filelog: negative MaxBatchBytes %d", o.MaxBatchBytes))
	}
	if o.IndexInterval < 0 {
		errs = append(errs, fmt.Errorf("filelog: negative IndexInterval %d", o.IndexInterval))
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.MaxBatchBytes == 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if o.IndexInterval == 0 {
		o.IndexInterval = DefaultIndexInterval
	}
	if o.FS == nil {
		o.FS = OSFS
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
