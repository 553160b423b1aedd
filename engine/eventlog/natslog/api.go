package natslog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
)

// JetStream API error codes (err_code) this package branches on, from the
// server's errors.json.
const (
	errCodeClusterNotAvail            = 10008
	errCodeClusterNotLeader           = 10009
	errCodeNotEnabledForAccount       = 10039
	errCodeNotEnabled                 = 10076
	errCodeNoMessageFound             = 10037
	errCodeMessageExceedsMaximum      = 10054
	errCodeWrongLastSequence          = 10071
	errCodeWrongLastSequenceConstant  = 10164
	errCodeAtomicIncompleteBatch      = 10176
	errCodeAtomicTooLargeBatch        = 10199
	errCodeAtomicTooManyInflight      = 10210
	errCodeAtomicDisabled             = 10174
	errCodeAtomicUnsupportedHeader    = 10177
	errCodeStreamNotFound             = 10059
	errCodeInsufficientResources      = 10023
	errCodeStreamStoreFailed          = 10077
	errCodeStreamHeaderExceedsMaximum = 10097
)

// Message headers. The Nats-* ones are JetStream's.
const (
	hdrBatchID       = "Nats-Batch-Id"
	hdrBatchSeq      = "Nats-Batch-Sequence"
	hdrBatchCommit   = "Nats-Batch-Commit"
	hdrExpLastSeq    = "Nats-Expected-Last-Sequence"
	hdrExpSubjSeq    = "Nats-Expected-Last-Subject-Sequence"
	hdrExpSubjSeqFor = "Nats-Expected-Last-Subject-Sequence-Subject"
	hdrSequence      = "Nats-Sequence"
	hdrTimeStamp     = "Nats-Time-Stamp"
	hdrSubject       = "Nats-Subject"
	hdrStatus        = "Status"

	// hdrBatch marks each event of a batch of n > 1 events with "k/n", its
	// 1-based index and the batch size. All events of a batch share the
	// server timestamp of the batch's first message, and the header is how a
	// reader finds that message. Events appended alone carry no header.
	hdrBatch = "Twinlog-Batch"
)

// apiError is the error object of a JetStream API response.
type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("jetstream: %s (code %d, err_code %d)", e.Description, e.Code, e.ErrCode)
}

// pubAck is the server's answer to a publish or an atomic batch commit.
type pubAck struct {
	Error  *apiError `json:"error,omitempty"`
	Stream string    `json:"stream"`
	Seq    uint64    `json:"seq"`
	Batch  string    `json:"batch,omitempty"`
	Count  uint64    `json:"count,omitempty"`
}

// msgGetRequest is the body of a direct get or a STREAM.MSG.GET request.
type msgGetRequest struct {
	Seq       uint64     `json:"seq,omitempty"`
	LastFor   string     `json:"last_by_subj,omitempty"`
	NextFor   string     `json:"next_by_subj,omitempty"`
	Batch     int        `json:"batch,omitempty"`
	MaxBytes  int        `json:"max_bytes,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
}

// msgGetResponse is the answer to STREAM.MSG.GET, which the stream leader
// gives.
type msgGetResponse struct {
	Error   *apiError `json:"error,omitempty"`
	Message *struct {
		Subject string    `json:"subject"`
		Seq     uint64    `json:"seq"`
		Header  []byte    `json:"hdrs,omitempty"`
		Data    []byte    `json:"data,omitempty"`
		Time    time.Time `json:"time"`
	} `json:"message,omitempty"`
}

// streamInfoResponse is the part of STREAM.INFO this package reads.
type streamInfoResponse struct {
	Error *apiError `json:"error,omitempty"`
	State struct {
		FirstSeq uint64 `json:"first_seq"`
		LastSeq  uint64 `json:"last_seq"`
	} `json:"state"`
}

// storedMsg is one stored message, as a direct get or STREAM.MSG.GET returns
// it.
type storedMsg struct {
	subject string
	seq     uint64
	time    int64 // Unix nanoseconds, assigned by the server when it stored the message
	data    []byte
	k, n    uint64 // index in its batch (1-based) and batch size; 1, 1 for a lone event
}

// batchFirst returns the position of the first event of sm's batch.
func (sm *storedMsg) batchFirst() uint64 { return sm.seq - (sm.k - 1) }

// parseBatch parses a hdrBatch value; an absent or malformed one means a
// lone event.
func parseBatch(v string) (k, n uint64) {
	i := strings.IndexByte(v, '/')
	if i < 0 {
		return 1, 1
	}
	k, err1 := strconv.ParseUint(v[:i], 10, 32)
	n, err2 := strconv.ParseUint(v[i+1:], 10, 32)
	if err1 != nil || err2 != nil || k == 0 || k > n {
		return 1, 1
	}
	return k, n
}

// rawHeader returns the value of header key in a raw NATS header block
// ("NATS/1.0\r\nKey: value\r\n...").
func rawHeader(hdr []byte, key string) string {
	for _, line := range strings.Split(string(hdr), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), key) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

var errNotFound = errors.New("natslog: no message")

// request sends data to subj and returns the reply, retrying while the
// stream has no responder (a leader election).
func (l *Log) request(ctx context.Context, subj string, data []byte) (*nats.Msg, error) {
	for attempt := 0; ; attempt++ {
		m, err := l.nc.RequestWithContext(ctx, subj, data)
		if err == nil || !errors.Is(err, nats.ErrNoResponders) {
			return m, err
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return nil, err
		}
	}
}

// fromDirect converts one direct-get reply.
func fromDirect(m *nats.Msg) (storedMsg, error) {
	if st := m.Header.Get(hdrStatus); st != "" {
		if st == "404" {
			return storedMsg{}, errNotFound
		}
		return storedMsg{}, fmt.Errorf("direct get: status %s %s", st, m.Header.Get("Description"))
	}
	seq, err := strconv.ParseUint(m.Header.Get(hdrSequence), 10, 64)
	if err != nil {
		return storedMsg{}, fmt.Errorf("direct get: bad %s header: %w", hdrSequence, err)
	}
	ts, err := time.Parse(time.RFC3339Nano, m.Header.Get(hdrTimeStamp))
	if err != nil {
		return storedMsg{}, fmt.Errorf("direct get: bad %s header: %w", hdrTimeStamp, err)
	}
	k, n := parseBatch(m.Header.Get(hdrBatch))
	return storedMsg{subject: m.Header.Get(hdrSubject), seq: seq, time: ts.UnixNano(), data: m.Data, k: k, n: n}, nil
}

// directGet asks any replica of the stream for one message.
func (l *Log) directGet(ctx context.Context, req msgGetRequest) (storedMsg, error) {
	body, _ := json.Marshal(req)
	m, err := l.request(ctx, l.directSubj, body)
	if err != nil {
		return storedMsg{}, fmt.Errorf("direct get: %w", err)
	}
	return fromDirect(m)
}

// leaderGet asks the stream leader for one message (STREAM.MSG.GET), which
// reflects every acknowledged append.
func (l *Log) leaderGet(ctx context.Context, req msgGetRequest) (storedMsg, error) {
	body, _ := json.Marshal(req)
	m, err := l.request(ctx, l.msgGetSubj, body)
	if err != nil {
		return storedMsg{}, fmt.Errorf("get message: %w", err)
	}
	var resp msgGetResponse
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return storedMsg{}, fmt.Errorf("get message: %w", err)
	}
	if resp.Error != nil {
		if resp.Error.ErrCode == errCodeNoMessageFound || resp.Error.Code == 404 {
			return storedMsg{}, errNotFound
		}
		return storedMsg{}, fmt.Errorf("get message: %w", resp.Error)
	}
	if resp.Message == nil {
		return storedMsg{}, errors.New("get message: empty response")
	}
	mm := resp.Message
	k, n := parseBatch(rawHeader(mm.Header, hdrBatch))
	return storedMsg{subject: mm.Subject, seq: mm.Seq, time: mm.Time.UnixNano(), data: mm.Data, k: k, n: n}, nil
}

// get asks for one message, from the leader when the stream is replicated
// and the answer must reflect every acknowledged append.
func (l *Log) get(ctx context.Context, req msgGetRequest) (storedMsg, error) {
	if l.strong {
		return l.leaderGet(ctx, req)
	}
	return l.directGet(ctx, req)
}

// directBatch asks a replica for up to req.Batch messages and calls fn for
// each, in order. A replica answers from its own state, which in a cluster
// may lag the leader but is always a prefix of the log.
func (l *Log) directBatch(ctx context.Context, req msgGetRequest, fn func(storedMsg) error) error {
	inbox := l.nc.NewRespInbox()
	sub, err := l.nc.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("direct get: %w", err)
	}
	defer sub.Unsubscribe()
	body, _ := json.Marshal(req)
	for attempt := 0; ; attempt++ {
		if err := l.nc.PublishRequest(l.directSubj, inbox, body); err != nil {
			return fmt.Errorf("direct get: %w", err)
		}
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return fmt.Errorf("direct get: %w", err)
		}
		if m.Header.Get(hdrStatus) == "503" { // no responders: no replica subscribed yet
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return fmt.Errorf("direct get: %w", err)
			}
			continue
		}
		for {
			switch st := m.Header.Get(hdrStatus); st {
			case "":
				sm, err := fromDirect(m)
				if err != nil {
					return err
				}
				if err := fn(sm); err != nil {
					return err
				}
			case "204", "404": // end of batch; nothing (more) found
				return nil
			default:
				return fmt.Errorf("direct get: status %s %s", st, m.Header.Get("Description"))
			}
			if m, err = sub.NextMsgWithContext(ctx); err != nil {
				return fmt.Errorf("direct get: %w", err)
			}
		}
	}
}

// decode turns a stored message into its event.
func (l *Log) decode(sm storedMsg) (event.Event, error) {
	var e event.Event
	n, err := event.Decode(sm.data, &e)
	if err != nil {
		return event.Event{}, fmt.Errorf("%w: position %d: %v", eventlog.ErrCorrupt, sm.seq, err)
	}
	if n != len(sm.data) || e.Position != 0 || e.Time != 0 {
		return event.Event{}, fmt.Errorf("%w: position %d: not a twinlog event", eventlog.ErrCorrupt, sm.seq)
	}
	if sm.subject != "" && sm.subject != l.subject(e.Stream) {
		return event.Event{}, fmt.Errorf("%w: position %d: stream %q on subject %s", eventlog.ErrCorrupt, sm.seq, e.Stream, sm.subject)
	}
	e.Position = sm.seq
	e.Time = sm.time
	return e, nil
}

// subject returns the subject events of stream are published on.
func (l *Log) subject(stream string) string {
	return l.prefix + EncodeToken(stream)
}

// streamInfo asks the stream leader for the stream's state.
func (l *Log) streamInfo(ctx context.Context) (streamInfoResponse, error) {
	var resp streamInfoResponse
	m, err := l.request(ctx, l.infoSubj, nil)
	if err != nil {
		return resp, fmt.Errorf("stream info: %w", err)
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return resp, fmt.Errorf("stream info: %w", err)
	}
	if resp.Error != nil {
		return resp, fmt.Errorf("stream info: %w", resp.Error)
	}
	return resp, nil
}
