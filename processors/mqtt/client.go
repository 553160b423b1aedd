package mqtt

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/twinlog/twinlog/processors/devices"
)

// ClientOptions configures the client mode.
type ClientOptions struct {
	// Broker is the external broker's URL, such as
	// "tcp://127.0.0.1:1883" or "ssl://host:8883". Required.
	Broker string
	// ClientID is twinlog's client id at the broker. With a persistent
	// session the broker keeps device messages for twinlog while it is
	// down, so it should be stable. Default "twinlog-" + random.
	ClientID string
	// Username and Password authenticate twinlog at the broker. Default
	// none.
	Username, Password string
	// CleanSession starts without the broker's stored session. Default
	// false: messages published while twinlog was away are delivered
	// (set a stable ClientID).
	CleanSession bool
	// TLSConfig is used for ssl:// and tls:// brokers.
	TLSConfig *tls.Config
	// ConnectTimeout bounds the first connection. Default 10 s.
	ConnectTimeout time.Duration
	// Logger receives reports. Default the gateway's.
	Logger *slog.Logger
}

// Client is the client mode: twinlog subscribes to device topics on an
// external broker (paho) and acknowledges each QoS 1 message once durable.
type Client struct {
	g   *Gateway
	c   paho.Client
	log *slog.Logger
}

var _ devices.CommandSender = (*Client)(nil)

// subscriptions are the device → twinlog topic filters.
var subscriptions = map[string]byte{
	topicRoot + "+/" + topicTelem:                 1,
	topicRoot + "+/" + topicReported:              1,
	topicRoot + "+/" + topicCommands + "/+/res/#": 1,
}

// Dial connects to the broker and subscribes to the device topics.
func Dial(g *Gateway, opts ClientOptions) (*Client, error) {
	if opts.Broker == "" {
		return nil, errors.New("mqtt: no broker URL")
	}
	if opts.Logger == nil {
		opts.Logger = g.log
	}
	if opts.ClientID == "" {
		var b [6]byte
		rand.Read(b[:])
		opts.ClientID = "twinlog-" + hex.EncodeToString(b[:])
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	cl := &Client{g: g, log: opts.Logger}
	po := paho.NewClientOptions().AddBroker(opts.Broker).SetClientID(opts.ClientID).
		SetUsername(opts.Username).SetPassword(opts.Password).SetCleanSession(opts.CleanSession).
		SetAutoAckDisabled(true).SetOrderMatters(true).SetAutoReconnect(true).
		SetConnectTimeout(opts.ConnectTimeout).SetMaxReconnectInterval(10 * time.Second).
		SetOnConnectHandler(func(c paho.Client) {
			tok := c.SubscribeMultiple(subscriptions, cl.handle)
			if tok.WaitTimeout(opts.ConnectTimeout) && tok.Error() == nil {
				cl.log.Info("mqtt client subscribed", "broker", opts.Broker)
				return
			}
			cl.log.Error("mqtt client: subscribe failed", "broker", opts.Broker, "err", tok.Error())
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			cl.log.Warn("mqtt client: connection lost; reconnecting", "broker", opts.Broker, "err", err)
		})
	if opts.TLSConfig != nil {
		po.SetTLSConfig(opts.TLSConfig)
	}
	cl.c = paho.NewClient(po)
	tok := cl.c.Connect()
	if !tok.WaitTimeout(opts.ConnectTimeout) {
		cl.c.Disconnect(0)
		return nil, fmt.Errorf("connect %s: timeout", opts.Broker)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("connect %s: %w", opts.Broker, err)
	}
	return cl, nil
}

// Close disconnects from the broker. Close the gateway after it.
func (c *Client) Close() error {
	c.c.Disconnect(250)
	return nil
}

// handle takes one device message from the broker.
func (c *Client) handle(_ paho.Client, m paho.Message) {
	topic := m.Topic()
	t, ok := parseTopic(topic)
	if !ok {
		m.Ack()
		return
	}
	done := func(r Result) {
		if r.Err != nil {
			// Not durable and not acknowledged: the broker redelivers
			// when the session resumes.
			c.log.Warn("mqtt message not appended; left unacknowledged", "device", t.device, "topic", topic, "err", r.Err)
			return
		}
		if len(r.Rejected) > 0 {
			c.report(t.device, topic, r)
		}
		m.Ack()
	}
	switch t.kind {
	case kindTelemetry:
		c.g.Telemetry(t.device, "", m.Payload(), done)
	case kindReported:
		c.g.Reported(t.device, "", m.Payload(), done)
	case kindResponse:
		if !c.g.Respond(t.device, t.requestID, t.status, m.Payload()) {
			c.log.Info("mqtt command response for no waiting request", "device", t.device, "topic", topic)
		}
		c.g.Complete(Result{Accepted: 1}, done)
	}
}

func (c *Client) report(dev, topic string, r Result) {
	c.log.Info("mqtt points rejected", "device", dev, "topic", topic, "accepted", r.Accepted,
		"rejected", len(r.Rejected), "first", r.Rejected[0].Code+": "+r.Rejected[0].Message)
	body, _ := json.Marshal(map[string]any{"topic": topic, "accepted": r.Accepted, "rejected": r.Rejected})
	c.c.Publish(ErrorsTopic(dev), 0, false, body)
}

// SendCommand publishes a command request at QoS 1 and waits for the
// broker's acknowledgement. It implements devices.CommandSender; whether
// the device is connected is the broker's knowledge, so an absent device
// shows as a timeout.
func (c *Client) SendCommand(ctx context.Context, deviceID, name, requestID string, payload []byte) error {
	tok := c.c.Publish(CommandTopic(deviceID, name, requestID), 1, false, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish command: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
