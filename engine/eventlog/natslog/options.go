package natslog

import (
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for the zero Options.
const (
	// DefaultStream is the JetStream stream name used when Options.Stream is
	// empty.
	DefaultStream = "TWINLOG"
	// DefaultSubject is the subject prefix used when Options.Subject is
	// empty.
	DefaultSubject = "twinlog"
	// DefaultMaxBatch is the largest batch Append accepts when
	// Options.MaxBatch is zero: the server's default limit on the size of an
	// atomic batch (JetStream's max_batch_size, 1,000 messages).
	DefaultMaxBatch = 1000
	// DefaultMaxInflight is the number of atomic batches one Log has in
	// flight at once when Options.MaxInflight is zero. The server accepts 50
	// per stream by default (max_batch_inflight_per_stream); staying below
	// leaves room for other writers.
	DefaultMaxInflight = 32
	// DefaultReadBatch bounds the events one Read or ReadStream request asks
	// the server for when Options.ReadBatch is zero.
	DefaultReadBatch = 1024
	// DefaultRequestTimeout bounds each request to the server when the
	// caller's context has no deadline and Options.RequestTimeout is zero.
	DefaultRequestTimeout = 10 * time.Second
)

// Options configures a Log. The zero value is valid: a file-backed,
// single-replica stream "TWINLOG" on subjects "twinlog.>".
type Options struct {
	// Stream is the name of the JetStream stream that holds the whole log.
	// Default DefaultStream ("TWINLOG").
	Stream string
	// Subject is the subject prefix: the event of stream s is published on
	// "<Subject>.<EncodeToken(s)>" and the stream captures "<Subject>.>".
	// It must be a literal subject (no wildcards) that no other stream on
	// the server captures. Default DefaultSubject ("twinlog").
	Subject string
	// Replicas is the stream's replication factor: 1 (default), 3 or 5. With
	// more than one, an append is acknowledged once a quorum of servers has
	// it, which is what makes the log durable across the loss of a server,
	// see the package documentation.
	Replicas int
	// Storage is where the servers keep the stream: jetstream.FileStorage
	// (the zero value, default) or jetstream.MemoryStorage (tests only: it
	// does not survive a server restart).
	Storage jetstream.StorageType
	// MaxBatch is the largest batch Append accepts; larger batches fail with
	// eventlog.ErrInvalid. It must not exceed the server's max_batch_size.
	// Default DefaultMaxBatch (1,000).
	MaxBatch int
	// MaxInflight bounds the atomic batches this Log has in flight at once.
	// Default DefaultMaxInflight (32).
	MaxInflight int
	// ReadBatch bounds the events one Read or ReadStream asks the server for.
	// Default DefaultReadBatch (1,024).
	ReadBatch int
	// RequestTimeout bounds each request to the server when the caller's
	// context has no deadline. Default DefaultRequestTimeout (10 s).
	RequestTimeout time.Duration
}

// Validate reports the first invalid field of o.
func (o Options) Validate() error {
	if o.Stream != "" && (strings.ContainsAny(o.Stream, ".*>/\\") || !validToken(o.Stream)) {
		return fmt.Errorf("natslog: invalid stream name %q", o.Stream)
	}
	if o.Subject != "" && !validSubject(o.Subject) {
		return fmt.Errorf("natslog: invalid subject prefix %q", o.Subject)
	}
	switch o.Replicas {
	case 0, 1, 3, 5:
	default:
		return fmt.Errorf("natslog: replicas %d, want 1, 3 or 5", o.Replicas)
	}
	if o.Storage != jetstream.FileStorage && o.Storage != jetstream.MemoryStorage {
		return fmt.Errorf("natslog: unknown storage %d", o.Storage)
	}
	if o.MaxBatch < 0 || o.MaxInflight < 0 || o.ReadBatch < 0 || o.RequestTimeout < 0 {
		return fmt.Errorf("natslog: negative limit in options")
	}
	return nil
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.Subject == "" {
		o.Subject = DefaultSubject
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.MaxInflight == 0 {
		o.MaxInflight = DefaultMaxInflight
	}
	if o.ReadBatch == 0 {
		o.ReadBatch = DefaultReadBatch
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	return o
}
