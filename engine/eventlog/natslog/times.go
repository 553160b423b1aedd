package natslog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Event times.
//
// JetStream stamps every stored message with the wall-clock time of the
// server that assigned its sequence; these stamps never decrease with the
// sequence (see the package documentation for the caveat). A replicated
// stream gives all messages of an atomic batch one stamp, a single server one
// per message, microseconds apart. The log contract wants one time per batch,
// so an event's Time is the stamp of its batch's first message: the Result of
// Append reports it, and a reader finds that message through the
// Twinlog-Batch header.

// maxCachedTimes bounds the cache of batch times.
const maxCachedTimes = 1 << 14

// timeCache remembers the times of recently seen batches, by the position of
// their first event. Stamps never change, so entries never go stale.
type timeCache struct {
	mu sync.Mutex
	m  map[uint64]int64
}

func (c *timeCache) get(first uint64) (int64, bool) {
	c.mu.Lock()
	t, ok := c.m[first]
	c.mu.Unlock()
	return t, ok
}

func (c *timeCache) put(first uint64, t int64) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedTimes {
		c.m = make(map[uint64]int64, 256)
	}
	c.m[first] = t
	c.mu.Unlock()
}

// batchTimes replaces the time of every message in sms that is not the first
// of its batch by the time of that first message.
func (l *Log) batchTimes(ctx context.Context, sms []storedMsg) error {
	for i := range sms {
		if sm := &sms[i]; sm.k == 1 && sm.n > 1 {
			l.times.put(sm.seq, sm.time)
		}
	}
	var missing []uint64
	for i := range sms {
		sm := &sms[i]
		if sm.k == 1 {
			continue
		}
		if t, ok := l.times.get(sm.batchFirst()); ok {
			sm.time = t
		} else {
			missing = append(missing, sm.batchFirst())
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := l.fetchTimes(ctx, missing); err != nil {
		return err
	}
	for i := range sms {
		sm := &sms[i]
		if sm.k == 1 {
			continue
		}
		t, ok := l.times.get(sm.batchFirst())
		if !ok {
			return fmt.Errorf("time of batch at %d: not found", sm.batchFirst())
		}
		sm.time = t
	}
	return nil
}

// fetchTimes reads the stamps of the messages at seqs into the cache, with
// pipelined direct gets (one round trip for all of them); a message a lagging
// replica does not have yet is asked of the leader.
func (l *Log) fetchTimes(ctx context.Context, seqs []uint64) error {
	inbox := l.nc.NewRespInbox()
	sub, err := l.nc.SubscribeSync(inbox + ".*")
	if err != nil {
		return fmt.Errorf("direct get: %w", err)
	}
	defer sub.Unsubscribe()
	sent := 0
	asked := make(map[uint64]bool, len(seqs))
	for _, seq := range seqs {
		if asked[seq] {
			continue
		}
		asked[seq] = true
		body, _ := json.Marshal(msgGetRequest{Seq: seq})
		if err := l.nc.PublishRequest(l.directSubj, inbox+"."+strconv.FormatUint(seq, 10), body); err != nil {
			return fmt.Errorf("direct get: %w", err)
		}
		sent++
	}
	for ; sent > 0; sent-- {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return fmt.Errorf("direct get: %w", err)
		}
		sm, err := fromDirect(m)
		if errors.Is(err, errNotFound) || m.Header.Get(hdrStatus) == "503" {
			seq, perr := strconv.ParseUint(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:], 10, 64)
			if perr != nil {
				return fmt.Errorf("direct get: reply on %s", m.Subject)
			}
			if sm, err = l.leaderGet(ctx, msgGetRequest{Seq: seq}); err != nil {
				return fmt.Errorf("time of batch at %d: %w", seq, err)
			}
		} else if err != nil {
			return err
		}
		l.times.put(sm.seq, sm.time)
	}
	return nil
}
