// Package httpserve is the HTTP/1.1 server of a twinlog node. It serves any
// http.Handler, so the API is written once against net/http's types, but it
// keeps a connection's state from one request to the next instead of
// building it anew for each:
//
//   - a connection has one http.Request, one header map, one response
//     writer and one output buffer, reset between requests; a header value
//     equal to the one the previous request sent (Host, Authorization,
//     User-Agent on a kept-alive connection) is not copied again;
//   - a response the handler finishes within the buffer (64 KiB) goes out
//     with its Content-Length and headers in one write; a longer one, or one
//     the handler flushes, is sent chunked;
//   - there is no background read per request and no deadline is reset per
//     request: one sweeper goroutine closes connections that sit idle past
//     IdleTimeout or take longer than ReadHeaderTimeout to send a request's
//     head.
//
// What it leaves out, on purpose: HTTP/2 (TLS connections negotiate
// http/1.1), Hijack, trailers, and cancelling a request's context when the
// client goes away mid-request (the context ends when the connection does;
// handlers bound their own work). Request heads are parsed as strictly as
// net/http parses them or more: a request both would read means the same
// to both (FuzzReadRequest checks it), and anything ambiguous, such as a
// body framed by both Content-Length and Transfer-Encoding, is refused
// with 400 and the connection closed.
package httpserve

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server serves HTTP/1.1 on listeners. Set its fields before Serve.
type Server struct {
	// Handler answers requests. Required.
	Handler http.Handler
	// TLSConfig, when set, makes Serve speak TLS (http/1.1 by ALPN).
	TLSConfig *tls.Config
	// ConnContext derives a connection's context (the parent of its
	// requests' contexts) from the server's.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ReadHeaderTimeout bounds the TLS handshake and the reading of each
	// request's head, from its first byte. Default 10 s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a kept-alive connection that sends no request for
	// this long. Default 2 min.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's head (request line and headers).
	// Default 64 KiB; a larger head is answered 431.
	MaxHeaderBytes int
	// Logger receives connection errors worth a look (panics, TLS
	// handshake failures are not logged). Default slog.Default().
	Logger *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool
	sweeping  bool
	stop      chan struct{}
	tlsConfig *tls.Config
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

func (s *Server) init() {
	if s.ReadHeaderTimeout <= 0 {
		s.ReadHeaderTimeout = 10 * time.Second
	}
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = 2 * time.Minute
	}
	if s.MaxHeaderBytes <= 0 {
		s.MaxHeaderBytes = 64 << 10
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
		s.stop = make(chan struct{})
	}
	if s.TLSConfig != nil && s.tlsConfig == nil {
		c := s.TLSConfig.Clone()
		c.NextProtos = []string{"http/1.1"}
		s.tlsConfig = c
	}
}

// Serve accepts connections on ln and serves each on its own goroutine
// until Shutdown or Close, when it returns ErrServerClosed. It closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.init()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	if !s.sweeping {
		s.sweeping = true
		go s.sweep()
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	base := context.Background()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				// Out of descriptors or similar: back off, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := newConn(s, nc)
		ctx := base
		if s.ConnContext != nil {
			ctx = s.ConnContext(ctx, nc)
		}
		if !s.track(c) {
			nc.Close()
			return ErrServerClosed
		}
		go c.serve(ctx)
	}
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting, closes idle connections, and waits for the
// others to finish the request they are serving (their connections close
// after it), or for ctx to end, when it closes them and returns ctx's
// error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginClose()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.beginClose()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.nc.Close()
	}
	return nil
}

func (s *Server) beginClose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if s.closing.Swap(true) {
		return
	}
	close(s.stop)
	for ln := range s.listeners {
		ln.Close()
	}
}

// closeIdle closes the connections waiting for a request and returns how
// many connections remain.
func (s *Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if st, _ := c.state(); st == stateIdle || st == stateNew {
			c.nc.Close()
		}
	}
	return len(s.conns)
}

// sweepEvery is how often the sweeper looks at the connections; a timeout
// fires up to this much late.
const sweepEvery = 250 * time.Millisecond

// sweep closes connections that overstay ReadHeaderTimeout or IdleTimeout.
// Per-connection deadlines would do the same at the cost of resetting a
// runtime timer twice per request.
func (s *Server) sweep() {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			clock.Store(now.UnixNano())
			s.mu.Lock()
			for c := range s.conns {
				st, since := c.state()
				var limit time.Duration
				switch st {
				case stateNew, stateHead:
					limit = s.ReadHeaderTimeout
				case stateIdle:
					limit = s.IdleTimeout
				default:
					continue
				}
				if now.UnixNano()-since > int64(limit) {
					c.nc.Close()
				}
			}
			s.mu.Unlock()
		}
	}
}

// clock is a coarse wall clock (Unix nanoseconds) kept by the sweepers; a
// connection stamps its state changes with it, never calling time.Now.
var clock atomic.Int64

func init() { clock.Store(time.Now().UnixNano()) }
