package natslog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/twinlog/twinlog/engine/eventlog"
)

var _ eventlog.Log = (*Log)(nil)

var _ eventlog.TailSource = (*Log)(nil)

// Log is an eventlog.Log stored in one JetStream stream. It is safe for
// concurrent use. Create it with Open or Dial and release it with Close.
type Log struct {
	nc      *nats.Conn
	ownConn bool // Dial made nc; Close closes it
	js      jetstream.JetStream
	opts    Options
	prefix  string // opts.Subject + "."
	strong  bool   // replicated: consistency-sensitive reads go to the stream leader
	maxData int    // largest message body the server accepts

	// Server API subjects for this stream.
	directSubj string // $JS.API.DIRECT.GET.<stream>
	msgGetSubj string // $JS.API.STREAM.MSG.GET.<stream>
	infoSubj   string // $JS.API.STREAM.INFO.<stream>

	inflight chan struct{} // semaphore bounding atomic batches in flight
	times    timeCache     // times of recent batches, see times.go

	done   chan struct{} // closed by Close
	closed atomic.Bool

	// seen is the highest position this Log knows to be committed: from its
	// own acknowledged appends, Head calls and the head watcher.
	seen atomic.Uint64

	mu struct {
		sync.Mutex
		grew    chan struct{}            // closed and replaced whenever seen grows
		watch   jetstream.ConsumeContext // head watcher, started by the first WaitHead that blocks
		started chan struct{}            // closed once the watcher runs; nil before the first start
	}
}

// Open opens the log kept in the JetStream stream named by opts, creating the
// stream if it does not exist, over an existing connection. The Log does not
// own nc: Close leaves it open.
//
// An existing stream must have been created by this package (or match it:
// subjects "<Subject>.>", atomic publish and direct get allowed); Open never
// changes the configuration of an existing stream.
func Open(ctx context.Context, nc *nats.Conn, opts Options) (*Log, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, errors.New("natslog: nil connection")
	}
	opts = opts.withDefaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", opts.Stream, err)
	}
	l := &Log{
		nc:         nc,
		js:         js,
		opts:       opts,
		prefix:     opts.Subject + ".",
		strong:     opts.Replicas > 1,
		maxData:    int(nc.MaxPayload()),
		directSubj: "$JS.API.DIRECT.GET." + opts.Stream,
		msgGetSubj: "$JS.API.STREAM.MSG.GET." + opts.Stream,
		infoSubj:   "$JS.API.STREAM.INFO." + opts.Stream,
		inflight:   make(chan struct{}, opts.MaxInflight),
		done:       make(chan struct{}),
	}
	l.mu.grew = make(chan struct{})
	rctx, cancel := l.requestContext(ctx)
	defer cancel()
	if err := l.ensureStream(rctx); err != nil {
		return nil, fmt.Errorf("open %s: %w", opts.Stream, err)
	}
	if _, err := l.Head(rctx); err != nil {
		return nil, fmt.Errorf("open %s: %w", opts.Stream, err)
	}
	return l, nil
}

// Dial connects to the NATS server(s) at url (a comma-separated list) and
// opens the log there, see Open. The Log owns the connection and closes it on
// Close.
func Dial(ctx context.Context, url string, opts Options) (*Log, error) {
	nc, err := nats.Connect(url, nats.Name("twinlog"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	l, err := Open(ctx, nc, opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	l.ownConn = true
	return l, nil
}

// StreamConfig returns the JetStream stream configuration Open creates for
// opts: every message kept forever (no limits, no discard), deletes and purges
// denied so positions stay contiguous, atomic batch publish and direct get
// allowed.
func StreamConfig(opts Options) jetstream.StreamConfig {
	opts = opts.withDefaults()
	return jetstream.StreamConfig{
		Name:               opts.Stream,
		Description:        "twinlog event log",
		Subjects:           []string{opts.Subject + ".>"},
		Retention:          jetstream.LimitsPolicy,
		MaxConsumers:       -1,
		MaxMsgs:            -1,
		MaxBytes:           -1,
		MaxMsgsPerSubject:  -1,
		MaxMsgSize:         -1,
		Discard:            jetstream.DiscardNew,
		Storage:            opts.Storage,
		Replicas:           opts.Replicas,
		DenyDelete:         true,
		DenyPurge:          true,
		AllowDirect:        true,
		AllowAtomicPublish: true,
	}
}

func (l *Log) ensureStream(ctx context.Context) error {
	cfg := StreamConfig(l.opts)
	var info *jetstream.StreamInfo
	for attempt := 0; ; attempt++ {
		s, err := l.js.CreateStream(ctx, cfg)
		if err == nil {
			info = s.CachedInfo()
			break
		}
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = l.js.Stream(ctx, l.opts.Stream)
			if err == nil {
				info = s.CachedInfo()
				break
			}
		}
		// A cluster that is still electing its meta leader answers with
		// "JetStream not enabled" or no responders for a moment.
		if !transient(err) || ctx.Err() != nil {
			return err
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return err
		}
	}
	c := info.Config
	want := l.opts.Subject + ".>"
	switch {
	case len(c.Subjects) != 1 || c.Subjects[0] != want:
		return fmt.Errorf("stream %s captures %v, want [%s]", c.Name, c.Subjects, want)
	case !c.AllowAtomicPublish:
		return fmt.Errorf("stream %s does not allow atomic publish", c.Name)
	case !c.AllowDirect:
		return fmt.Errorf("stream %s does not allow direct get", c.Name)
	case c.Retention != jetstream.LimitsPolicy || c.MaxMsgs > 0 || c.MaxBytes > 0 || c.MaxAge > 0 || c.MaxMsgsPerSubject > 0:
		return fmt.Errorf("stream %s has retention limits; the log must keep every event", c.Name)
	}
	if c.Replicas != l.opts.Replicas {
		// Trust the stream: it decides where reads must go.
		l.strong = c.Replicas > 1
	}
	return nil
}

// transient reports whether err says the server or the stream is not ready
// yet (no leader, no responders) rather than that the request is wrong.
func transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrTimeout) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case errCodeClusterNotAvail, errCodeClusterNotLeader, errCodeNotEnabled, errCodeNotEnabledForAccount:
			return true
		}
	}
	return strings.Contains(err.Error(), "no suitable peers") || strings.Contains(err.Error(), "insufficient resources")
}

// Close implements eventlog.Log. Blocked WaitHead calls and subscriptions
// return eventlog.ErrClosed; the connection is closed only if Dial made it.
func (l *Log) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(l.done)
	l.mu.Lock()
	watch := l.mu.watch
	l.mu.watch = nil
	l.mu.Unlock()
	if watch != nil {
		watch.Stop()
	}
	if l.ownConn {
		l.nc.Close()
	}
	return nil
}

func (l *Log) checkOpen() error {
	if l.closed.Load() {
		return eventlog.ErrClosed
	}
	return nil
}

// requestContext bounds a request by RequestTimeout unless ctx already has a
// deadline.
func (l *Log) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, l.opts.RequestTimeout)
}

// advance records that position pos is committed and wakes WaitHead.
func (l *Log) advance(pos uint64) {
	for {
		cur := l.seen.Load()
		if pos <= cur {
			return
		}
		if l.seen.CompareAndSwap(cur, pos) {
			break
		}
	}
	l.mu.Lock()
	close(l.mu.grew)
	l.mu.grew = make(chan struct{})
	l.mu.Unlock()
}

func backoff(attempt int) time.Duration {
	d := 5 * time.Millisecond << min(attempt, 7)
	return min(d, 500*time.Millisecond)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Options returns the options the Log runs with, defaults filled in.
func (l *Log) Options() Options { return l.opts }
