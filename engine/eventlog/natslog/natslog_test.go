package natslog_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/logtest"
	"github.com/twinlog/twinlog/engine/eventlog/natslog"
	"github.com/twinlog/twinlog/engine/eventlog/natslog/natstest"
)

// backend returns a logtest.Backend whose every New opens a fresh stream
// (its own name and subject prefix) on the servers at url.
func backend(t *testing.T, url string, base natslog.Options) logtest.Backend {
	var n atomic.Int64
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1e6)
	connect := func(t *testing.T) *nats.Conn {
		nc, err := nats.Connect(url, nats.MaxReconnects(-1))
		if err != nil {
			t.Fatalf("connect %s: %v", url, err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	open := func(t *testing.T, opts natslog.Options) *natslog.Log {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		l, err := natslog.Open(ctx, connect(t), opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return l
	}
	optsOf := map[eventlog.Log]natslog.Options{}
	return logtest.Backend{
		New: func(t *testing.T) eventlog.Log {
			i := n.Add(1)
			opts := base
			opts.Stream = fmt.Sprintf("T%s_%d", run, i)
			opts.Subject = fmt.Sprintf("t%s.%d", run, i)
			l := open(t, opts)
			optsOf[l] = opts
			return l
		},
		Reopen: func(t *testing.T, l eventlog.Log) eventlog.Log {
			opts := optsOf[l]
			if err := l.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			nl := open(t, opts)
			optsOf[nl] = opts
			return nl
		},
	}
}

func TestConformance(t *testing.T) {
	s := natstest.RunServer(t, natstest.Options{})
	logtest.Run(t, backend(t, s.URL, natslog.Options{}))
}

func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster: skipped in -short mode")
	}
	c := natstest.RunCluster(t, 3, natstest.Options{})
	logtest.Run(t, backend(t, c.URL, natslog.Options{Replicas: 3}))
}

// TestConformanceExternal runs the suite against the server named by
// TWINLOG_NATS_URL (for example nats://127.0.0.1:4222), which must have
// JetStream enabled.
func TestConformanceExternal(t *testing.T) {
	url := os.Getenv("TWINLOG_NATS_URL")
	if url == "" {
		t.Skip("TWINLOG_NATS_URL not set: no external NATS server to test against (e.g. TWINLOG_NATS_URL=nats://127.0.0.1:4222)")
	}
	logtest.Run(t, backend(t, url, natslog.Options{}))
}
