package natstest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configures the servers. The zero value is a JetStream server with
// the default, lazy file-store durability.
type Options struct {
	// SyncAlways makes every server fsync each write before acknowledging it
	// (the server setting `jetstream { sync_interval: always }`). It applies
	// to the whole server, not to one stream. Default false: the file store
	// flushes to the OS at once but fsyncs every 2 minutes, so acknowledged
	// messages survive a process crash but not a power failure of the node.
	SyncAlways bool
	// Dir is the parent of the servers' store directories. Default
	// t.TempDir().
	Dir string
	// Ready bounds the wait for the servers to accept connections and, for a
	// cluster, to elect a JetStream meta leader. Default 30 s.
	Ready time.Duration
}

func (o Options) ready() time.Duration {
	if o.Ready > 0 {
		return o.Ready
	}
	return 30 * time.Second
}

// Server is a running in-process server.
type Server struct {
	*server.Server
	// URL is the client URL, nats://127.0.0.1:<port>.
	URL string
}

// RunServer starts one JetStream server and registers its shutdown with
// t.Cleanup.
func RunServer(t testing.TB, opts Options) *Server {
	t.Helper()
	dir := opts.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	o := baseOptions("s1", dir, opts)
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	s.Start()
	t.Cleanup(func() { shutdown(s) })
	if !s.ReadyForConnections(opts.ready()) {
		t.Fatalf("natstest: server not ready after %s", opts.ready())
	}
	deadline := time.Now().Add(opts.ready())
	for !s.JetStreamEnabled() {
		if time.Now().After(deadline) {
			t.Fatalf("natstest: JetStream not enabled after %s", opts.ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &Server{Server: s, URL: s.ClientURL()}
}

// Cluster is a running in-process cluster.
type Cluster struct {
	Servers []*Server
	// URL lists every server's client URL, comma-separated, as nats.Connect
	// accepts it.
	URL string
}

// RunCluster starts n JetStream servers routed to each other on loopback,
// waits until they have elected a JetStream meta leader, and registers their
// shutdown with t.Cleanup.
func RunCluster(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: cluster of %d servers", n)
	}
	dir := opts.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	ports := freePorts(t, n)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	c := &Cluster{}
	var urls []string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("s%d", i+1)
		o := baseOptions(name, fmt.Sprintf("%s/%s", dir, name), opts)
		o.Cluster = server.ClusterOpts{Name: "twinlog-test", Host: "127.0.0.1", Port: ports[i]}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatalf("natstest: new server %s: %v", name, err)
		}
		s.Start()
		t.Cleanup(func() { shutdown(s) })
		c.Servers = append(c.Servers, &Server{Server: s, URL: s.ClientURL()})
		urls = append(urls, s.ClientURL())
	}
	c.URL = strings.Join(urls, ",")
	for _, s := range c.Servers {
		if !s.ReadyForConnections(opts.ready()) {
			t.Fatalf("natstest: server %s not ready after %s", s.Name(), opts.ready())
		}
	}
	c.waitMetaLeader(t, opts.ready())
	return c
}

// waitMetaLeader waits until one server leads the JetStream meta group and
// every server is current with it.
func (c *Cluster) waitMetaLeader(t testing.TB, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		leaders, current := 0, 0
		for _, s := range c.Servers {
			if s.JetStreamIsLeader() {
				leaders++
			}
			if s.JetStreamIsCurrent() {
				current++
			}
		}
		if leaders == 1 && current == len(c.Servers) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: no JetStream meta leader after %s (%d leaders, %d current)", d, leaders, current)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func baseOptions(name, dir string, opts Options) *server.Options {
	return &server.Options{
		ServerName:         name,
		Host:               "127.0.0.1",
		Port:               server.RANDOM_PORT,
		NoLog:              true,
		NoSigs:             true,
		JetStream:          true,
		StoreDir:           dir,
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  8 << 30,
		SyncAlways:         opts.SyncAlways,
	}
}

func shutdown(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// freePorts returns n loopback TCP ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("natstest: find a free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}
