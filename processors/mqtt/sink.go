package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/twinlog/twinlog/processors/routes"
)

// SinkMaker returns a maker of event-route sinks for "mqtt" endpoints, for
// routes.Router.SetSinkMaker. Each CloudEvent is published, in structured
// JSON form, at QoS 1 on the endpoint's topic. An endpoint without a URL
// publishes through the embedded broker b (an error when b is nil); one
// with a URL (tcp://host:1883) connects to that broker with paho and counts
// an event delivered once the broker acknowledged it. Other endpoint kinds
// are left to the router (nil, nil).
func SinkMaker(b *Broker) func(ep *routes.Endpoint) (routes.Sink, error) {
	return func(ep *routes.Endpoint) (routes.Sink, error) {
		if ep.Kind != routes.KindMQTT {
			return nil, nil
		}
		if strings.ContainsAny(ep.Topic, "+#") {
			return nil, fmt.Errorf("mqtt endpoint %s: topic %q has a wildcard", ep.Name, ep.Topic)
		}
		if ep.URL == "" {
			if b == nil {
				return nil, fmt.Errorf("mqtt endpoint %s: no URL and no embedded broker (--mqtt-listen)", ep.Name)
			}
			return &brokerSink{b: b, topic: ep.Topic}, nil
		}
		o := paho.NewClientOptions().AddBroker(ep.URL).SetClientID("twinlog-route-" + ep.Name).
			SetAutoReconnect(true).SetConnectRetry(true).SetConnectTimeout(10 * time.Second)
		c := paho.NewClient(o)
		c.Connect() // retried in the background; Deliver fails until connected
		return &pahoSink{c: c, topic: ep.Topic}, nil
	}
}

// brokerSink publishes through the embedded broker's inline client.
type brokerSink struct {
	b     *Broker
	topic string
}

func (s *brokerSink) Deliver(ctx context.Context, events []routes.CloudEvent) error {
	for i := range events {
		body, err := json.Marshal(&events[i])
		if err != nil {
			return err
		}
		if err := s.b.srv.Publish(s.topic, body, false, 1); err != nil {
			return fmt.Errorf("publish %s: %w", s.topic, err)
		}
	}
	return nil
}

func (s *brokerSink) Close() error { return nil }

// pahoSink publishes to an external broker.
type pahoSink struct {
	c     paho.Client
	topic string
}

func (s *pahoSink) Deliver(ctx context.Context, events []routes.CloudEvent) error {
	if !s.c.IsConnectionOpen() {
		return errors.New("mqtt sink: not connected")
	}
	toks := make([]paho.Token, len(events))
	for i := range events {
		body, err := json.Marshal(&events[i])
		if err != nil {
			return err
		}
		toks[i] = s.c.Publish(s.topic, 1, false, body)
	}
	for _, tok := range toks {
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				return fmt.Errorf("publish %s: %w", s.topic, err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *pahoSink) Close() error {
	s.c.Disconnect(250)
	return nil
}
