// Package node wires one twinlog node together: the event log in a data
// directory, the engine and its projections, and the HTTP API, with the
// node's credentials and TLS material. cmd/twinlog's serve command and
// end-to-end tests start nodes through it.
package node

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/authn"
	"github.com/twinlog/twinlog/engine/authz"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/filelog"
	"github.com/twinlog/twinlog/engine/httpapi"
	"github.com/twinlog/twinlog/engine/httpserve"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/devices"
	"github.com/twinlog/twinlog/processors/handlers"
	"github.com/twinlog/twinlog/processors/ingest"
	"github.com/twinlog/twinlog/processors/mqtt"
	"github.com/twinlog/twinlog/processors/routes"
	"github.com/twinlog/twinlog/processors/simulate"
	"github.com/twinlog/twinlog/projections/graphquery"
	"github.com/twinlog/twinlog/projections/telemetry"
	"github.com/twinlog/twinlog/projections/timetravel"
	"github.com/twinlog/twinlog/projections/twingraph"
	"github.com/twinlog/twinlog/wasm-handlers/host"
)

// Config configures a node. Zero values mean the documented defaults.
type Config struct {
	// DataDir holds the log and the node's generated credentials. Required.
	DataDir string
	// Listen is the address to serve on. Default "127.0.0.1:9721".
	Listen string
	// TLSCert and TLSKey are PEM files; when both are set the node serves
	// HTTPS. Default: plain HTTP.
	TLSCert, TLSKey string
	// SelfSigned generates (once) a development certificate for localhost
	// into DataDir/tls and serves HTTPS with it. Ignored when TLSCert is set.
	SelfSigned bool
	// NetHTTP serves with net/http's server instead of the node's own
	// HTTP/1.1 server (engine/httpserve), which keeps per-connection state
	// between requests. The API is the same on both; this exists to compare
	// them. Default false.
	NetHTTP bool
	// Token is the admin bearer token. Default: $TWINLOG_TOKEN is read by
	// the CLI; when empty here, a token is generated at first start into
	// DataDir/admin-token and reused afterwards.
	Token string
	// AllowAnonymous serves requests without credentials, as the principal
	// "anonymous": AnonymousRole on the whole instance plus the grants
	// made to "anonymous". Default false.
	AllowAnonymous bool
	// AnonymousRole is the role anonymous callers hold on the whole
	// instance. Default "": only the grants made to "anonymous" (the CLI's
	// --anonymous-role defaults to owner for development).
	AnonymousRole authz.Role
	// JWTIssuers are the trusted issuers of bearer JWTs (RS256/ES256 keys
	// from a JWKS file or URL, or an HS256 secret for development). The
	// admin token and API keys (/apikeys) authenticate too; what a caller
	// may do is set by grants (/grants). Default none.
	JWTIssuers []*authn.Issuer
	// JWTAudience is the "aud" JWTs must carry. Required with JWTIssuers.
	JWTAudience string
	// JWTClockSkew is the leeway for JWT exp, nbf and iat. Default 1 minute.
	JWTClockSkew time.Duration
	// Logger receives the node's reports. Default slog.Default().
	Logger *slog.Logger
	// Out receives one-time notices meant for the operator (the generated
	// token). Default io.Discard.
	Out io.Writer
	// Snapshots configures the twin graph's snapshots in DataDir/snapshots,
	// which bound the log replay at start. Default: every 1,000,000 events
	// or 5 minutes, keeping 2.
	Snapshots twingraph.SnapshotterOptions
	// MQTTListen serves the embedded MQTT broker for devices on this
	// address (such as ":1883"). Default "": no broker.
	MQTTListen string
	// MQTTBroker subscribes to the device topics on an external MQTT
	// broker (such as "tcp://127.0.0.1:1883"). Default "": none.
	MQTTBroker string
	// MQTTClientID, MQTTUsername and MQTTPassword are twinlog's identity at
	// MQTTBroker. Default: a random client id, no credentials.
	MQTTClientID, MQTTUsername, MQTTPassword string
	// IngestLayout is how telemetry from POST /ingest and MQTT devices is
	// laid out in the log. Default ingest.LayoutBatch: one telemetry.batch
	// event per request, which every reader of telemetry understands.
	IngestLayout ingest.Layout
	// CompactCheck is how often the node checks whether the Go heap is
	// fragmented enough to rebuild the twin graph (see CompactGraph).
	// Default 30 s; negative: never.
	CompactCheck time.Duration
	// TelemetryRetention bounds the telemetry history (rebuilt from the log
	// at start) to this long before its newest point. Default 0: keep
	// everything.
	TelemetryRetention time.Duration
}

// DefaultListen is the address a node serves on when none is given.
const DefaultListen = "127.0.0.1:9721"

// Node is a running twinlog node.
type Node struct {
	cfg         Config
	log         eventlog.Log
	eng         *engine.Engine
	api         *httpapi.Server
	graph       *twingraph.Graph
	snaps       *twingraph.Snapshotter
	compacting  sync.Mutex // one CompactGraph at a time
	stopCompact context.CancelFunc
	compactDone chan struct{}
	checkpoints *timetravel.Checkpointer
	telemetry   *telemetry.Follower
	twins       *twins.Service
	handlers    *handlers.Manager
	host        *host.Host // the handlers' and the simulations'
	routes      *routes.Router
	sim         *simulate.Simulator
	devices     *devices.Registry
	gateway     *mqtt.Gateway
	broker      *mqtt.Broker
	mqttc       *mqtt.Client
	token       string
	ln          net.Listener
	srv         httpServer
	scheme      string
	started     time.Time
}

// Open opens the data directory, replays the log into the projections and
// binds the listener. Serve starts answering requests.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("node: no data directory")
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	n := &Node{cfg: cfg, scheme: "http", started: time.Now()}
	ok := false
	defer func() {
		if !ok {
			n.Close()
		}
	}()

	token, err := n.adminToken()
	if err != nil {
		return nil, err
	}
	n.token = token

	// Each phase of the start is timed: a slow restart names its phase.
	phase := time.Now()
	took := func(msg string, args ...any) {
		now := time.Now()
		cfg.Logger.Info(msg, append(args, "took", now.Sub(phase).Round(time.Millisecond))...)
		phase = now
	}
	lg, err := filelog.Open(filepath.Join(cfg.DataDir, "log"), filelog.Options{Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	n.log = lg
	took("log opened")

	// Restore the graph from the newest usable snapshot, then replay only
	// the log after it.
	start := time.Now()
	head, err := lg.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("read log head: %w", err)
	}
	snapDir := filepath.Join(cfg.DataDir, "snapshots")
	st, err := restore(ctx, lg, snapDir, head, cfg.Logger)
	if err != nil {
		return nil, err
	}
	graph, grants, keys := st.graph, st.grants, st.keys
	n.graph = graph
	from := graph.Position()
	took("snapshot loaded", "position", from) // and grants and API keys replayed to it
	var verifier *authn.Verifier
	if len(cfg.JWTIssuers) > 0 {
		if verifier, err = authn.NewVerifier(authn.Config{Issuers: cfg.JWTIssuers, Audience: cfg.JWTAudience, ClockSkew: cfg.JWTClockSkew}); err != nil {
			return nil, err
		}
	}
	eng, err := engine.New(lg, engine.Options{From: from, Logger: cfg.Logger}, st.projections()...)
	if err != nil {
		return nil, err
	}
	n.eng = eng
	if err := eng.Start(ctx, func(applied, head uint64) {
		if time.Since(start) > time.Second {
			cfg.Logger.Info("replaying log", "applied", applied, "head", head)
		}
	}); err != nil {
		return nil, fmt.Errorf("replay log: %w", err)
	}
	took("log replayed", "events", eng.Applied()-from, "position", eng.Applied())
	snapOpts := cfg.Snapshots
	if snapOpts.Logger == nil {
		snapOpts.Logger = cfg.Logger
	}
	n.snaps, err = twingraph.NewSnapshotter(snapDir, graph, snapOpts)
	if err != nil {
		return nil, err
	}
	n.snaps.Start()
	if cfg.CompactCheck >= 0 {
		every := cfg.CompactCheck
		if every == 0 {
			every = 30 * time.Second
		}
		cctx, cancel := context.WithCancel(context.Background())
		n.stopCompact, n.compactDone = cancel, make(chan struct{})
		go n.compactor(cctx, every)
	}
	histDir := filepath.Join(cfg.DataDir, "history")
	n.checkpoints, err = timetravel.NewCheckpointer(histDir, graph, timetravel.CheckpointOptions{Logger: cfg.Logger, Adopt: snapDir})
	if err != nil {
		return nil, err
	}
	n.checkpoints.Start()
	travel, err := timetravel.New(lg, graph, timetravel.Options{Dirs: []string{snapDir, histDir}, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}

	n.api = httpapi.New(httpapi.Config{
		Engine:         eng,
		Token:          token,
		AllowAnonymous: cfg.AllowAnonymous,
		AnonymousRole:  cfg.AnonymousRole,
		Logger:         cfg.Logger,
	})
	n.api.RegisterAuth(&httpapi.Auth{Verifier: verifier, Keys: keys, Grants: grants, Graph: graph})
	n.twins = twins.New(eng, graph, twins.Options{})
	n.api.RegisterTwins(n.twins)
	took("twin service ready")
	// One handler host for the live handlers and the simulation branches,
	// so a branch running a deployed handler compiles nothing.
	if n.host, err = host.New(host.Config{CacheDir: host.CacheDir(cfg.DataDir), Logger: cfg.Logger, Keep: simulate.KeptModules}); err != nil {
		return nil, err
	}
	n.handlers, err = handlers.New(eng, n.twins, handlers.Options{
		Host:      n.host,
		ModuleDir: filepath.Join(cfg.DataDir, "handlers", "modules"),
		Logger:    cfg.Logger,
		Grants:    grants,
	})
	if err != nil {
		return nil, err
	}
	if err := n.handlers.Start(ctx); err != nil {
		return nil, fmt.Errorf("start handlers: %w", err)
	}
	took("handlers started")
	n.api.RegisterHandlers(n.handlers)
	n.api.RegisterQuery(graphquery.New(graph, graphquery.Options{}))
	n.api.RegisterHistory(travel, graphquery.Options{})
	if n.sim, err = simulate.New(lg, travel, simulate.Options{
		Logger:      cfg.Logger,
		HandlerHost: n.host,
		ModuleDir:   filepath.Join(cfg.DataDir, "handlers", "modules"),
		Dir:         filepath.Join(cfg.DataDir, "simulations"),
	}); err != nil {
		return nil, err
	}
	if k, err := n.sim.Restore(ctx); err != nil {
		return nil, fmt.Errorf("restore simulations: %w", err)
	} else if k > 0 {
		took("simulations restored", "branches", k)
	}
	n.api.RegisterSimulations(n.sim)
	// The telemetry history follows the log from its own position (1 for
	// a new store), not the twin graph snapshot's: it rebuilds in the
	// background and answers 503 until it has caught up.
	tstore, err := telemetry.New(telemetry.Options{Retention: cfg.TelemetryRetention})
	if err != nil {
		return nil, err
	}
	if n.telemetry, err = telemetry.Follow(ctx, lg, tstore, telemetry.FollowOptions{Logger: cfg.Logger}); err != nil {
		return nil, fmt.Errorf("follow telemetry: %w", err)
	}
	n.api.RegisterTelemetry(n.telemetry)
	in, err := ingest.New(eng, graph, ingest.Options{Layout: cfg.IngestLayout})
	if err != nil {
		return nil, err
	}
	n.api.RegisterIngest(in)
	n.devices, err = devices.Open(ctx, lg, n.twins, devices.Options{Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("open device registry: %w", err)
	}
	in.SetDevices(n.devices)
	n.api.RegisterDevices(n.devices)
	if cfg.MQTTListen != "" || cfg.MQTTBroker != "" {
		n.gateway, err = mqtt.NewGateway(n.devices, in, n.twins, mqtt.Options{Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
	}
	if cfg.MQTTListen != "" {
		n.broker, err = mqtt.NewBroker(n.gateway, mqtt.BrokerOptions{Listen: cfg.MQTTListen, Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		if err := n.broker.Start(); err != nil {
			return nil, fmt.Errorf("start mqtt broker: %w", err)
		}
		n.devices.SetSender(n.broker)
		n.devices.SetDisconnector(n.broker)
		cfg.Logger.Info("mqtt broker listening", "addr", n.broker.Addr())
	}
	if cfg.MQTTBroker != "" {
		n.mqttc, err = mqtt.Dial(n.gateway, mqtt.ClientOptions{Broker: cfg.MQTTBroker, ClientID: cfg.MQTTClientID,
			Username: cfg.MQTTUsername, Password: cfg.MQTTPassword, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("connect to mqtt broker: %w", err)
		}
		if n.broker == nil {
			n.devices.SetSender(n.mqttc)
		}
	}
	n.routes = routes.New(lg, routes.Options{Models: routes.ModelsOf(graph), Logger: cfg.Logger})
	n.routes.SetSinkMaker(mqtt.SinkMaker(n.broker))
	if err := n.routes.Start(context.Background()); err != nil {
		return nil, fmt.Errorf("start event routes: %w", err)
	}
	took("event routes started")
	n.api.RegisterRoutes(n.routes)

	tlsCert, tlsKey := cfg.TLSCert, cfg.TLSKey
	if tlsCert == "" && cfg.SelfSigned {
		tlsCert, tlsKey, err = selfSigned(filepath.Join(cfg.DataDir, "tls"), cfg.Listen)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Out, "twinlog: serving HTTPS with the self-signed certificate %s (trust it with SSL_CERT_FILE or NODE_EXTRA_CA_CERTS)\n", tlsCert)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	n.ln = ln
	var tlsConfig *tls.Config
	if tlsCert != "" {
		if tlsConfig, err = loadTLS(tlsCert, tlsKey); err != nil {
			ln.Close()
			return nil, err
		}
		n.scheme = "https"
	}
	const readHeaderTimeout, idleTimeout = 10 * time.Second, 2 * time.Minute
	if cfg.NetHTTP {
		if tlsConfig != nil {
			// HTTP/1.1 only, like the node's own server.
			n.ln = tls.NewListener(ln, tlsConfig)
		}
		n.srv = &http.Server{
			Handler:           n.api,
			ConnContext:       n.api.ConnContext,
			ReadHeaderTimeout: readHeaderTimeout,
			IdleTimeout:       idleTimeout,
			ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		}
	} else {
		n.srv = &httpserve.Server{
			Handler:           n.api,
			TLSConfig:         tlsConfig,
			ConnContext:       n.api.ConnContext,
			ReadHeaderTimeout: readHeaderTimeout,
			IdleTimeout:       idleTimeout,
			Logger:            cfg.Logger,
		}
	}
	took("listening", "addr", ln.Addr().String())
	cfg.Logger.Info("node opened", "took", time.Since(n.started).Round(time.Millisecond))
	ok = true
	return n, nil
}

// adminToken returns the configured token, or the one stored in the data
// directory, generating and announcing it on first start.
func (n *Node) adminToken() (string, error) {
	if n.cfg.Token != "" {
		return n.cfg.Token, nil
	}
	path := filepath.Join(n.cfg.DataDir, "admin-token")
	b, err := os.ReadFile(path)
	if err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	t := "tl_" + hex.EncodeToString(raw[:])
	if err := writeFileAtomic(path, []byte(t+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	fmt.Fprintf(n.cfg.Out, "twinlog: generated admin token (stored in %s):\n\n    %s\n\n", path, t)
	return t, nil
}

// URL returns the base URL the node serves at.
func (n *Node) URL() string { return n.scheme + "://" + n.ln.Addr().String() }

// Token returns the admin bearer token.
func (n *Node) Token() string { return n.token }

// Engine returns the node's engine.
func (n *Node) Engine() *engine.Engine { return n.eng }

// Snapshotter returns the node's twin graph snapshotter, to take a
// snapshot on demand.
func (n *Node) Snapshotter() *twingraph.Snapshotter { return n.snaps }

// Checkpointer returns the node's history checkpointer: its Maybe waits
// for a checkpoint in progress and writes (or adopts) one if due.
func (n *Node) Checkpointer() *timetravel.Checkpointer { return n.checkpoints }

// Twins returns the node's twin service.
func (n *Node) Twins() *twins.Service { return n.twins }

// Telemetry returns the node's telemetry history follower.
func (n *Node) Telemetry() *telemetry.Follower { return n.telemetry }

// httpServer is what the node needs of an HTTP server: net/http's, or
// httpserve's.
type httpServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// API returns the node's HTTP handler.
func (n *Node) API() *httpapi.Server { return n.api }

// Serve answers requests until ctx ends, then shuts down gracefully: it stops
// accepting, lets requests in flight finish (up to 10 s), stops the engine and
// closes the log.
func (n *Node) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- n.srv.Serve(n.ln) }()
	select {
	case err := <-errc:
		n.Close()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := n.srv.Shutdown(sctx)
	if cerr := n.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close stops the snapshotter (waiting for a snapshot in progress) and the
// engine, and closes the log. It does not wait for requests.
func (n *Node) Close() error {
	if n.srv != nil {
		n.srv.Close()
	}
	if n.ln != nil {
		n.ln.Close() // when Serve never ran
	}
	if n.routes != nil {
		n.routes.Stop()
		n.routes = nil
	}
	if n.broker != nil {
		n.broker.Close()
		n.broker = nil
	}
	if n.mqttc != nil {
		n.mqttc.Close()
		n.mqttc = nil
	}
	if n.gateway != nil {
		// Writes out what is still queued before the engine stops.
		n.gateway.Close()
		n.gateway = nil
	}
	if n.telemetry != nil {
		n.telemetry.Stop()
		n.telemetry = nil
	}
	if n.handlers != nil {
		n.handlers.Close()
		n.handlers = nil
	}
	if n.stopCompact != nil {
		n.stopCompact()
		<-n.compactDone
		n.stopCompact = nil
	}
	if n.checkpoints != nil {
		n.checkpoints.Stop()
		n.checkpoints = nil
	}
	if n.snaps != nil {
		n.snaps.Stop()
		n.snaps = nil
	}
	if n.sim != nil {
		n.sim.Close()
		n.sim = nil
	}
	if n.host != nil {
		n.host.Close()
		n.host = nil
	}
	if n.eng != nil {
		n.eng.Stop()
		n.eng = nil
	}
	var err error
	if n.log != nil {
		err = n.log.Close()
		n.log = nil
	}
	return err
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
