package natslog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
)

// Retry bounds for appends the server rejected without writing anything.
const (
	// maxBusyRetries bounds retries of batches rejected because too many
	// were in flight, or that the server dropped before the commit.
	maxBusyRetries = 40
	// maxContendedRetries bounds retries of appends whose expectations all
	// still hold but that lost to a concurrent in-flight write of the same
	// subject (a replicated stream refuses to check an expectation then).
	maxContendedRetries = 20
)

// Append implements eventlog.Log.
//
// A batch of one event is one publish; a larger batch is one JetStream atomic
// batch (Nats-Batch-Id / Nats-Batch-Sequence / Nats-Batch-Commit), so the
// server stores all of it at consecutive sequences or none of it. Batches over
// Options.MaxBatch events, and events whose encoding exceeds the server's
// max_payload, fail with eventlog.ErrInvalid.
//
// Expectations become Nats-Expected-Last-Subject-Sequence headers, checked by
// the server: see the package documentation for how they are placed and for
// the fallback when a batch has more expectations than events.
func (l *Log) Append(ctx context.Context, batch []event.Event, expect ...eventlog.Expect) (eventlog.Result, error) {
	if err := l.checkOpen(); err != nil {
		return eventlog.Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventlog.Result{}, err
	}
	if err := eventlog.Validate(batch); err != nil {
		return eventlog.Result{}, err
	}
	if len(batch) > l.opts.MaxBatch {
		return eventlog.Result{}, fmt.Errorf("%w: batch of %d events over the limit of %d", eventlog.ErrInvalid, len(batch), l.opts.MaxBatch)
	}
	exps, err := l.dedupe(ctx, expect)
	if err != nil {
		return eventlog.Result{}, err
	}
	msgs := make([]*nats.Msg, len(batch))
	for i := range batch {
		e := batch[i] // Position and Time are zero: the server's sequence and timestamp stand for them
		data, err := event.Append(make([]byte, 0, event.EncodedSize(&e)), &e)
		if err != nil {
			return eventlog.Result{}, fmt.Errorf("%w: event %d: %v", eventlog.ErrInvalid, i, err)
		}
		if len(data) > l.maxData-512 { // leave room for the headers
			return eventlog.Result{}, fmt.Errorf("%w: event %d encodes to %d bytes, over the server's max_payload %d",
				eventlog.ErrInvalid, i, len(data), l.maxData)
		}
		msgs[i] = &nats.Msg{Subject: l.subject(e.Stream), Data: data, Header: nats.Header{}}
		if len(batch) > 1 {
			msgs[i].Header.Set(hdrBatch, strconv.Itoa(i+1)+"/"+strconv.Itoa(len(batch)))
		}
	}
	rctx, cancel := l.requestContext(ctx)
	defer cancel()

	if !l.place(batch, msgs, exps) {
		return l.appendGuarded(rctx, msgs, exps)
	}
	contended := 0
	for {
		ack, err := l.publish(rctx, msgs)
		if err == nil {
			return l.result(rctx, ack, len(msgs))
		}
		var ae *apiError
		if !errors.As(err, &ae) || (ae.ErrCode != errCodeWrongLastSequence && ae.ErrCode != errCodeWrongLastSequenceConstant) {
			return eventlog.Result{}, fmt.Errorf("append: %w", err)
		}
		if len(exps) == 1 && ae.ErrCode == errCodeWrongLastSequence {
			if actual, ok := parseWrongLast(ae.Description); ok {
				return eventlog.Result{}, &eventlog.ConflictError{Stream: exps[0].Stream, Expected: exps[0].Version, Actual: actual}
			}
		}
		ce, err := l.findConflict(rctx, exps)
		if err != nil {
			return eventlog.Result{}, fmt.Errorf("append: %w", err)
		}
		if ce != nil {
			return eventlog.Result{}, ce
		}
		// Every expectation still holds: the server refused to check one
		// because another write of the same subject was in flight. Nothing
		// was written; try again.
		if contended++; contended > maxContendedRetries {
			return eventlog.Result{}, &eventlog.ConflictError{Stream: exps[0].Stream, Expected: exps[0].Version, Actual: exps[0].Version}
		}
		if err := sleep(rctx, backoff(contended)); err != nil {
			return eventlog.Result{}, fmt.Errorf("append: %w", err)
		}
	}
}

// dedupe merges expectations on the same stream. Two different versions for
// one stream cannot both hold: it reports the one that fails.
func (l *Log) dedupe(ctx context.Context, expect []eventlog.Expect) ([]eventlog.Expect, error) {
	if len(expect) <= 1 {
		return expect, nil
	}
	out := make([]eventlog.Expect, 0, len(expect))
	for _, x := range expect {
		i := slices.IndexFunc(out, func(y eventlog.Expect) bool { return y.Stream == x.Stream })
		if i < 0 {
			out = append(out, x)
			continue
		}
		if out[i].Version == x.Version {
			continue
		}
		v, err := l.StreamVersion(ctx, x.Stream)
		if err != nil {
			return nil, fmt.Errorf("append: %w", err)
		}
		bad := x
		if v != out[i].Version {
			bad = out[i]
		}
		return nil, &eventlog.ConflictError{Stream: bad.Stream, Expected: bad.Version, Actual: v}
	}
	return out, nil
}

// place puts each expectation on one message of the batch as
// Nats-Expected-Last-Subject-Sequence (plus -Subject when the message is on
// another stream). The server checks a message's expectation against the
// log before the batch plus the batch's earlier messages, and refuses one
// on a subject the batch already wrote, so an expectation on stream s must
// sit on a message at or before the first one that writes s. Each message
// carries at most one. place assigns them earliest deadline first and
// reports false when they do not fit.
func (l *Log) place(batch []event.Event, msgs []*nats.Msg, exps []eventlog.Expect) bool {
	if len(exps) == 0 {
		return true
	}
	if len(exps) > len(batch) {
		return false
	}
	type slot struct {
		x        eventlog.Expect
		deadline int
	}
	slots := make([]slot, len(exps))
	for i, x := range exps {
		d := slices.IndexFunc(batch, func(e event.Event) bool { return e.Stream == x.Stream })
		if d < 0 {
			d = len(batch) - 1
		}
		slots[i] = slot{x, d}
	}
	slices.SortStableFunc(slots, func(a, b slot) int { return a.deadline - b.deadline })
	for i, s := range slots {
		if i > s.deadline {
			return false
		}
	}
	for i, s := range slots {
		h := msgs[i].Header
		h.Set(hdrExpSubjSeq, strconv.FormatUint(s.x.Version, 10))
		if batch[i].Stream != s.x.Stream {
			h.Set(hdrExpSubjSeqFor, l.subject(s.x.Stream))
		}
	}
	return true
}

// appendGuarded appends a batch with more expectations than can be placed
// on its messages: it checks them against the stream leader, then publishes
// with Nats-Expected-Last-Sequence set to the head it saw, so the batch is
// written only if nothing was appended in between. It retries while other
// appends win that race.
func (l *Log) appendGuarded(ctx context.Context, msgs []*nats.Msg, exps []eventlog.Expect) (eventlog.Result, error) {
	for _, m := range msgs {
		m.Header.Del(hdrExpSubjSeq)
		m.Header.Del(hdrExpSubjSeqFor)
	}
	for attempt := 0; ; attempt++ {
		info, err := l.streamInfo(ctx)
		if err != nil {
			return eventlog.Result{}, fmt.Errorf("append: %w", err)
		}
		ce, err := l.findConflict(ctx, exps)
		if err != nil {
			return eventlog.Result{}, fmt.Errorf("append: %w", err)
		}
		if ce != nil {
			return eventlog.Result{}, ce
		}
		msgs[0].Header.Set(hdrExpLastSeq, strconv.FormatUint(info.State.LastSeq, 10))
		ack, err := l.publish(ctx, msgs)
		if err == nil {
			return l.result(ctx, ack, len(msgs))
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.ErrCode != errCodeWrongLastSequence {
			return eventlog.Result{}, fmt.Errorf("append: %w", err)
		}
		if err := sleep(ctx, backoff(attempt)/4); err != nil {
			return eventlog.Result{}, fmt.Errorf("append: %w", err)
		}
	}
}

// findConflict reads the current version of every expected stream from the
// leader and returns the first that differs, or nil.
func (l *Log) findConflict(ctx context.Context, exps []eventlog.Expect) (*eventlog.ConflictError, error) {
	for _, x := range exps {
		v, err := l.version(ctx, x.Stream, true)
		if err != nil {
			return nil, err
		}
		if v != x.Version {
			return &eventlog.ConflictError{Stream: x.Stream, Expected: x.Version, Actual: v}, nil
		}
	}
	return nil, nil
}

// parseWrongLast extracts the actual sequence from the server's "wrong last
// sequence: N" description.
func parseWrongLast(desc string) (uint64, bool) {
	i := strings.LastIndexByte(desc, ':')
	if i < 0 {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.TrimSpace(desc[i+1:]), 10, 64)
	return v, err == nil
}

// publish sends msgs as one publish (one message) or one atomic batch and
// returns the server's acknowledgement. It retries rejections that wrote
// nothing and say so: no responders while a leader is elected, too many
// batches in flight, a batch dropped before its commit.
func (l *Log) publish(ctx context.Context, msgs []*nats.Msg) (pubAck, error) {
	if len(msgs) > 1 {
		select {
		case l.inflight <- struct{}{}:
			defer func() { <-l.inflight }()
		case <-ctx.Done():
			return pubAck{}, ctx.Err()
		}
	}
	for attempt := 0; ; attempt++ {
		ack, err := l.publishOnce(ctx, msgs)
		if err == nil {
			return ack, nil
		}
		retry := errors.Is(err, nats.ErrNoResponders)
		var ae *apiError
		if errors.As(err, &ae) {
			switch ae.ErrCode {
			case errCodeAtomicTooManyInflight, errCodeAtomicIncompleteBatch, errCodeClusterNotLeader, errCodeClusterNotAvail:
				retry = true
			case errCodeMessageExceedsMaximum, errCodeAtomicTooLargeBatch, errCodeStreamHeaderExceedsMaximum:
				return pubAck{}, fmt.Errorf("%w: %v", eventlog.ErrInvalid, err)
			}
		}
		if !retry || attempt >= maxBusyRetries {
			return pubAck{}, err
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return pubAck{}, err
		}
	}
}

func (l *Log) publishOnce(ctx context.Context, msgs []*nats.Msg) (pubAck, error) {
	last := msgs[len(msgs)-1]
	if len(msgs) > 1 {
		id := nuid.Next()
		for i, m := range msgs {
			m.Header.Set(hdrBatchID, id)
			m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		}
		last.Header.Set(hdrBatchCommit, "1")
		for _, m := range msgs[:len(msgs)-1] {
			if err := l.nc.PublishMsg(m); err != nil {
				return pubAck{}, err
			}
		}
	}
	resp, err := l.nc.RequestMsgWithContext(ctx, last)
	if err != nil {
		return pubAck{}, err
	}
	var ack pubAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return pubAck{}, fmt.Errorf("decode publish ack: %w", err)
	}
	if ack.Error != nil {
		return pubAck{}, ack.Error
	}
	if ack.Stream != l.opts.Stream || ack.Seq < uint64(len(msgs)) ||
		(len(msgs) > 1 && ack.Count != uint64(len(msgs))) {
		return pubAck{}, fmt.Errorf("unexpected publish ack %+v for %d messages", ack, len(msgs))
	}
	return ack, nil
}

// result builds the Result of an acknowledged append. Its Time is the
// timestamp the server stored with the batch's first message, which takes a
// read: the acknowledgement does not carry it.
func (l *Log) result(ctx context.Context, ack pubAck, n int) (eventlog.Result, error) {
	r := eventlog.Result{First: ack.Seq - uint64(n) + 1, Last: ack.Seq}
	l.advance(r.Last)
	sm, err := l.get(ctx, msgGetRequest{Seq: r.First})
	if err != nil {
		return r, fmt.Errorf("append: written at %d..%d, read back its time: %w", r.First, r.Last, err)
	}
	r.Time = sm.time
	if n > 1 {
		l.times.put(r.First, r.Time)
	}
	return r, nil
}
