package devices

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/schemas/dtdl"
)

// CommandSender delivers a command request to a device; the MQTT
// transport implements it. The device answers later through Respond.
type CommandSender interface {
	// SendCommand publishes the request. It returns an *engine.Error with
	// code DeviceNotOnline when the transport knows the device is not
	// connected.
	SendCommand(ctx context.Context, deviceID, name, requestID string, payload []byte) error
}

// Disconnector closes the connections of devices whose credentials the
// registry revoked (deleted, or given a new key); the embedded MQTT broker
// implements it.
type Disconnector interface {
	// DisconnectDevice closes every connection of the device. It is
	// called after the change is durable, without registry locks held.
	DisconnectDevice(deviceID string)
}

// SetDisconnector sets who closes the connections of revoked devices.
func (r *Registry) SetDisconnector(d Disconnector) {
	r.mu.Lock()
	r.mu.disconnector = d
	r.mu.Unlock()
}

// Response is a device's answer to a command.
type Response struct {
	// Status is the device's status code; 200 when it gives none.
	Status int `json:"status"`
	// Payload is the device's response JSON, null when empty.
	Payload json.RawMessage `json:"payload"`
}

type commands struct {
	seq atomic.Uint64
	mu  sync.Mutex
	// waiting maps request ids to the channel of the caller waiting.
	waiting map[string]chan Response
}

// SetSender sets the transport commands are delivered through.
func (r *Registry) SetSender(s CommandSender) {
	r.mu.Lock()
	r.mu.sender = s
	r.mu.Unlock()
}

// ErrCommandTimeout is returned by Invoke when the device did not answer in
// time; the HTTP edge answers 504 with code GatewayTimeout.
var ErrCommandTimeout = &engine.Error{Kind: engine.KindTimeout, Code: "GatewayTimeout",
	Message: "the device did not respond to the command in time"}

// Invoke delivers command name of twin's model, with the JSON request
// payload (nil for none), to the device mirrored by twin, and waits for its
// response up to timeout (0: Options.CommandTimeout).
//
// Errors: DigitalTwinNotFound, DeviceNotFound (no device mirrors the twin),
// CommandNotFound (the model declares no such command), ValidationFailed
// (the payload does not match the command's request schema),
// DeviceNotOnline, ErrCommandTimeout.
func (r *Registry) Invoke(ctx context.Context, twin, name string, payload []byte, timeout time.Duration) (Response, error) {
	snap := r.twins.Graph().Snapshot()
	t, ok := snap.Twin(twin)
	if !ok {
		return Response{}, engine.Errorf(engine.KindNotFound, "DigitalTwinNotFound", "twin %s does not exist", twin)
	}
	if itf, ok := snap.Models().Get(t.Model); ok {
		c, ok := itf.Content(name)
		if !ok || c.Kind != dtdl.KindCommand {
			return Response{}, engine.Errorf(engine.KindNotFound, "CommandNotFound", "model %s declares no command %q", t.Model, name)
		}
		if err := checkRequest(c, payload); err != nil {
			return Response{}, err
		}
	}
	dev, ok := r.DeviceOf(twin)
	if !ok {
		return Response{}, engine.Errorf(engine.KindNotFound, "DeviceNotFound", "no device mirrors twin %s", twin)
	}
	r.mu.RLock()
	sender := r.mu.sender
	r.mu.RUnlock()
	if sender == nil {
		return Response{}, engine.Errorf(engine.KindUnavailable, "DeviceNotOnline", "no device transport is running (start MQTT)")
	}
	if timeout <= 0 {
		timeout = r.opts.CommandTimeout
	}
	timeout = min(timeout, r.opts.MaxCommandTimeout)
	rid := strconv.FormatUint(r.cmds.seq.Add(1), 36) + "." + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	ch := make(chan Response, 1)
	r.cmds.mu.Lock()
	r.cmds.waiting[rid] = ch
	r.cmds.mu.Unlock()
	defer func() {
		r.cmds.mu.Lock()
		delete(r.cmds.waiting, rid)
		r.cmds.mu.Unlock()
	}()
	if len(payload) == 0 {
		payload = []byte("null")
	}
	if err := sender.SendCommand(ctx, dev, name, rid, payload); err != nil {
		return Response{}, err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case resp := <-ch:
		return resp, nil
	case <-timer.C:
		return Response{}, ErrCommandTimeout
	case <-ctx.Done():
		return Response{}, ctx.Err()
	}
}

// Respond hands a device's response to the waiting Invoke. It reports
// false when no call waits for requestID (unknown, or already timed out),
// or when the request was not sent to deviceID.
func (r *Registry) Respond(deviceID, requestID string, resp Response) bool {
	r.cmds.mu.Lock()
	ch, ok := r.cmds.waiting[requestID]
	if ok {
		delete(r.cmds.waiting, requestID)
	}
	r.cmds.mu.Unlock()
	if !ok {
		return false
	}
	if resp.Status == 0 {
		resp.Status = 200
	}
	if len(resp.Payload) == 0 {
		resp.Payload = json.RawMessage("null")
	}
	ch <- resp
	return true
}

// checkRequest validates a command payload against its request schema.
func checkRequest(c *dtdl.Content, payload []byte) error {
	if c.Request == nil || c.Request.Schema == nil || len(payload) == 0 {
		return nil
	}
	v, err := decodeJSON(payload)
	if err != nil {
		return engine.Errorf(engine.KindInvalid, "InvalidArgument", "the command payload is not valid JSON: %v", err)
	}
	if err := c.Request.Schema.Validate(v); err != nil {
		return engine.Errorf(engine.KindInvalid, "ValidationFailed", "command %s request %s: %v", c.Name, c.Request.Name, err)
	}
	return nil
}

func decodeJSON(b []byte) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("data after the value")
	}
	return v, nil
}
