package routes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Sink delivers CloudEvents to one endpoint.
type Sink interface {
	// Deliver sends events, in order per Key, and returns nil only when the
	// endpoint accepted all of them. It may have delivered some when it
	// fails; the caller retries the whole batch (at least once).
	Deliver(ctx context.Context, events []CloudEvent) error
	// Close releases the sink's connections.
	Close() error
}

// Webhook modes (CloudEvents HTTP binding).
const (
	ModeStructured = "structured" // one event per POST, application/cloudevents+json
	ModeBinary     = "binary"     // one event per POST, ce-* headers, the data as body
	ModeBatch      = "batch"      // many events per POST, application/cloudevents-batch+json
)

// webhook posts CloudEvents over HTTP(S).
type webhook struct {
	url    string
	mode   string
	lanes  int
	client *http.Client
}

func newWebhook(ep *Endpoint, client *http.Client) *webhook {
	lanes := ep.Concurrency
	if lanes <= 0 {
		lanes = 8
	}
	mode := ep.Mode
	if mode == "" {
		mode = ModeStructured
	}
	return &webhook{url: ep.URL, mode: mode, lanes: lanes, client: client}
}

func (w *webhook) Close() error { return nil }

func (w *webhook) Deliver(ctx context.Context, events []CloudEvent) error {
	if w.mode == ModeBatch {
		return w.post(ctx, "application/cloudevents-batch+json", mustJSON(events), nil)
	}
	if len(events) == 1 || w.lanes == 1 {
		for i := range events {
			if err := w.one(ctx, &events[i]); err != nil {
				return err
			}
		}
		return nil
	}
	// Spread events over lanes by key: one twin's events stay in order on
	// one lane, distinct twins go in parallel.
	lanes := make([][]*CloudEvent, w.lanes)
	for i := range events {
		h := fnv(events[i].Key) % uint32(w.lanes)
		lanes[h] = append(lanes[h], &events[i])
	}
	var wg sync.WaitGroup
	errs := make([]error, w.lanes)
	for l, evs := range lanes {
		if len(evs) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, e := range evs {
				if err := w.one(ctx, e); err != nil {
					errs[l] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *webhook) one(ctx context.Context, e *CloudEvent) error {
	if w.mode == ModeBinary {
		h := http.Header{}
		h.Set("ce-specversion", e.SpecVersion)
		h.Set("ce-id", e.ID)
		h.Set("ce-type", e.Type)
		h.Set("ce-source", e.Source)
		for k, v := range map[string]string{"ce-subject": e.Subject, "ce-time": e.Time, "ce-dataschema": e.DataSchema, "ce-traceparent": e.TraceParent} {
			if v != "" {
				h.Set(k, v)
			}
		}
		return w.post(ctx, e.DataContentType, e.Data, h)
	}
	return w.post(ctx, "application/cloudevents+json; charset=utf-8", mustJSON(e), nil)
}

func (w *webhook) post(ctx context.Context, ctype string, body []byte, h http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", w.url, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post %s: status %d", w.url, resp.StatusCode)
	}
	return nil
}

func fnv(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// natsSink publishes structured CloudEvents on a NATS subject. Deliver
// returns once the server has acknowledged receipt of the batch (a flush),
// so a broken connection is retried rather than lost.
type natsSink struct {
	nc      *nats.Conn
	own     bool
	subject string
}

func newNATS(ep *Endpoint, shared *nats.Conn) (*natsSink, error) {
	if ep.URL == "" && shared != nil {
		return &natsSink{nc: shared, subject: ep.Subject}, nil
	}
	nc, err := nats.Connect(ep.URL, nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", ep.URL, err)
	}
	return &natsSink{nc: nc, own: true, subject: ep.Subject}, nil
}

func (s *natsSink) Deliver(ctx context.Context, events []CloudEvent) error {
	for i := range events {
		b, err := json.Marshal(&events[i])
		if err != nil {
			return err
		}
		msg := &nats.Msg{Subject: s.subject, Data: b, Header: nats.Header{}}
		msg.Header.Set("Content-Type", "application/cloudevents+json")
		if err := s.nc.PublishMsg(msg); err != nil {
			return fmt.Errorf("publish %s: %w", s.subject, err)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return s.nc.FlushWithContext(fctx)
}

func (s *natsSink) Close() error {
	if s.own {
		s.nc.Close()
	}
	return nil
}
