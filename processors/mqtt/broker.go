package mqtt

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/processors/devices"
)

// BrokerOptions configures the embedded broker.
type BrokerOptions struct {
	// Listen is the TCP address to serve MQTT on, such as ":1883".
	// Required.
	Listen string
	// TLSConfig serves MQTT over TLS when set. Default: plain TCP.
	TLSConfig *tls.Config
	// Logger receives reports. Default the gateway's.
	Logger *slog.Logger
}

// Broker is the embedded MQTT broker (mochi-mqtt): devices connect with
// their id as username and their key as password, publish on their own
// topics only, and get each QoS 1 PUBACK once their points are durable.
type Broker struct {
	g    *Gateway
	srv  *mochi.Server
	ln   *listeners.TCP
	log  *slog.Logger
	hook *hook

	mu struct {
		sync.Mutex
		online map[string]int // device id → open sessions
	}
	// acks holds encoded PUBACKs per client until the end of a batch; used
	// only from the gateway's completion chain, which is sequential.
	acks map[*mochi.Client][]byte
}

var (
	_ devices.CommandSender = (*Broker)(nil)
	_ devices.Disconnector  = (*Broker)(nil)
)

// NewBroker starts listening on opts.Listen; Start serves.
func NewBroker(g *Gateway, opts BrokerOptions) (*Broker, error) {
	if opts.Listen == "" {
		return nil, errors.New("mqtt: no broker listen address")
	}
	if opts.Logger == nil {
		opts.Logger = g.log
	}
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumQos = 1
	srv := mochi.New(&mochi.Options{
		InlineClient: true,
		Capabilities: caps,
		Logger:       opts.Logger.With("component", "mqtt"),
	})
	b := &Broker{g: g, srv: srv, log: opts.Logger, acks: map[*mochi.Client][]byte{}}
	b.mu.online = map[string]int{}
	b.hook = &hook{b: b}
	if err := srv.AddHook(b.hook, nil); err != nil {
		return nil, err
	}
	b.ln = listeners.NewTCP(listeners.Config{ID: "twinlog", Address: opts.Listen, TLSConfig: opts.TLSConfig})
	if err := srv.AddListener(b.ln); err != nil {
		return nil, fmt.Errorf("listen mqtt: %w", err)
	}
	g.setOnBatch(b.flushAcks)
	return b, nil
}

// Start serves connections.
func (b *Broker) Start() error { return b.srv.Serve() }

// Addr returns the address the broker listens on.
func (b *Broker) Addr() string { return b.ln.Address() }

// Close disconnects every client and stops listening. Close the gateway
// after it.
//
// The listener is closed first without the broker library's sweep of its
// clients: that sweep (Clients.GetByListener) read-locks the client map
// twice, and deadlocks with a client leaving at the same moment, whose
// removal waits for the write lock between the two. The clients are
// disconnected here instead, from one read of the map; the server's own
// Close then finds the listener closed and does not sweep again.
func (b *Broker) Close() error {
	b.ln.Close(func(string) {})
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Listener == b.ln.ID() {
			_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}
	}
	return b.srv.Close()
}

// Online reports whether a device has a connection.
func (b *Broker) Online(deviceID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.online[deviceID] > 0
}

// DisconnectDevice closes every connection of a device: its key was
// replaced or it was deleted. An MQTT 5 client is told why (Not
// authorized). It implements devices.Disconnector.
func (b *Broker) DisconnectDevice(deviceID string) {
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Inline || cl.Closed() || string(cl.Properties.Username) != deviceID {
			continue
		}
		b.log.Info("mqtt device disconnected: its key was replaced or it was deleted", "device", deviceID, "remote", cl.Net.Remote)
		if cl.Properties.ProtocolVersion == 5 {
			b.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
		} else {
			cl.Stop(packets.ErrNotAuthorized)
		}
	}
}

// SendCommand publishes a command request to the device (QoS 1). It
// implements devices.CommandSender.
func (b *Broker) SendCommand(ctx context.Context, deviceID, name, requestID string, payload []byte) error {
	if !b.Online(deviceID) {
		return engine.Errorf(engine.KindNotFound, "DeviceNotOnline", "device %s is not connected", deviceID)
	}
	return b.srv.Publish(CommandTopic(deviceID, name, requestID), payload, false, 1)
}

// complete acknowledges one message once its result is known.
func (b *Broker) complete(cl *mochi.Client, dev, topic string, id uint16, qos byte, r Result) {
	if r.Err != nil {
		// Not durable: no PUBACK; dropping the connection makes the
		// device resend.
		b.log.Warn("mqtt message not appended; disconnecting the device so it resends", "device", dev, "topic", topic, "err", r.Err)
		cl.Stop(r.Err)
		return
	}
	if len(r.Rejected) > 0 {
		b.report(dev, topic, r)
	}
	if qos == 0 {
		return
	}
	var reason byte
	if r.Accepted == 0 && len(r.Rejected) > 0 && cl.Properties.ProtocolVersion == 5 {
		reason = byte(packets.ErrPayloadFormatInvalid.Code)
		if c := r.Rejected[0].Code; c == "DeviceNotFound" || c == "DeviceNotProvisioned" {
			reason = byte(packets.ErrNotAuthorized.Code)
		}
	}
	buf := b.acks[cl]
	if reason == 0 {
		buf = append(buf, packets.Puback<<4, 2, byte(id>>8), byte(id))
	} else {
		buf = append(buf, packets.Puback<<4, 3, byte(id>>8), byte(id), reason)
	}
	b.acks[cl] = buf
}

// flushAcks writes each client's PUBACKs of the batch in one write.
func (b *Broker) flushAcks() {
	for cl, buf := range b.acks {
		delete(b.acks, cl)
		if err := writeRaw(cl, buf); err != nil {
			cl.Stop(err)
		}
	}
}

// writeRaw writes encoded packets to a client's connection under the
// client's write lock, as mochi's own WritePacket does. A device that does
// not read its acknowledgements for 5 s is dropped rather than stalling
// the others.
func writeRaw(cl *mochi.Client, buf []byte) error {
	cl.Lock()
	defer cl.Unlock()
	if cl.Closed() || cl.Net.Conn == nil {
		return nil
	}
	c := cl.Net.Conn
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Write(buf)
	c.SetWriteDeadline(time.Time{})
	return err
}

// report publishes a rejection report to the device's errors topic and
// logs it.
func (b *Broker) report(dev, topic string, r Result) {
	b.log.Info("mqtt points rejected", "device", dev, "topic", topic, "accepted", r.Accepted,
		"rejected", len(r.Rejected), "first", r.Rejected[0].Code+": "+r.Rejected[0].Message)
	if !b.Online(dev) {
		return
	}
	body, _ := json.Marshal(map[string]any{"topic": topic, "accepted": r.Accepted, "rejected": r.Rejected})
	b.srv.Publish(ErrorsTopic(dev), body, false, 0)
}

// hook is twinlog's mochi hook: authentication, ACLs and the publish path.
type hook struct {
	mochi.HookBase
	b *Broker
}

func (h *hook) ID() string { return "twinlog" }

func (h *hook) Provides(k byte) bool {
	switch k {
	case mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnPublish, mochi.OnSessionEstablished, mochi.OnDisconnect:
		return true
	}
	return false
}

// OnConnectAuthenticate admits a device whose username is a registered
// device id and whose password is its key.
func (h *hook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	dev := string(pk.Connect.Username)
	if h.b.g.reg.Authenticate(dev, pk.Connect.Password) {
		return true
	}
	h.b.log.Info("mqtt connection refused: unknown device or bad key", "device", dev, "remote", cl.Net.Remote)
	return false
}

// OnACLCheck lets a device publish only its own device topics and
// subscribe only under devices/{its id}/.
func (h *hook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	dev := string(cl.Properties.Username)
	if write {
		t, ok := parseTopic(topic)
		return ok && t.device == dev
	}
	rest, ok := strings.CutPrefix(topic, topicRoot+dev+"/")
	return ok && rest != ""
}

// OnSessionEstablished counts the device online. It checks the key again:
// a key replaced between the connection's authentication and now would
// have been missed by DisconnectDevice.
func (h *hook) OnSessionEstablished(cl *mochi.Client, pk packets.Packet) {
	dev := string(cl.Properties.Username)
	h.b.mu.Lock()
	h.b.mu.online[dev]++
	h.b.mu.Unlock()
	if !h.b.g.reg.Authenticate(dev, pk.Connect.Password) {
		cl.Stop(packets.ErrNotAuthorized)
	}
}

func (h *hook) OnDisconnect(cl *mochi.Client, err error, expire bool) {
	dev := string(cl.Properties.Username)
	h.b.mu.Lock()
	if h.b.mu.online[dev]--; h.b.mu.online[dev] <= 0 {
		delete(h.b.mu.online, dev)
	}
	h.b.mu.Unlock()
}

// OnPublish takes every device publish away from mochi's own path: the
// message is queued for appending and mochi sends no PUBACK
// (ErrRejectPacket); the PUBACK is written by complete once the points are
// durable. Device topics are not forwarded to other subscribers.
func (h *hook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	t, ok := parseTopic(pk.TopicName)
	dev := string(cl.Properties.Username)
	if !ok || t.device != dev {
		return pk, packets.ErrRejectPacket // the ACL check refuses these first
	}
	id, qos, topic := pk.PacketID, pk.FixedHeader.Qos, pk.TopicName
	done := func(r Result) { h.b.complete(cl, dev, topic, id, qos, r) }
	model := userProperty(pk.Properties.User, "model-id")
	if model == "" {
		model = userProperty(cl.Properties.Props.User, "model-id")
	}
	switch t.kind {
	case kindTelemetry:
		h.b.g.Telemetry(dev, model, pk.Payload, done)
	case kindReported:
		h.b.g.Reported(dev, model, pk.Payload, done)
	case kindResponse:
		if !h.b.g.Respond(dev, t.requestID, t.status, pk.Payload) {
			h.b.log.Info("mqtt command response for no waiting request", "device", dev, "topic", topic)
		}
		h.b.g.Complete(Result{Accepted: 1}, done)
	}
	return pk, packets.ErrRejectPacket
}

func userProperty(ps []packets.UserProperty, key string) string {
	for _, p := range ps {
		if p.Key == key {
			return p.Val
		}
	}
	return ""
}
