package httpserve

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/twinlog/twinlog/engine/jsonstr"
)

// Connection states, for the sweeper and Shutdown.
const (
	stateNew    = iota // accepted; TLS handshake or first request head
	stateIdle          // waiting for the next request's first byte
	stateHead          // reading a request's head
	stateActive        // running the handler or writing the response
)

type conn struct {
	srv *Server
	nc  net.Conn
	// st packs the state (low 2 bits) and the coarse time it was entered.
	st atomic.Int64

	br *bufio.Reader
	// The request, header map, URL and body reader are this connection's
	// and are reset for each request.
	req    http.Request
	url    url.URL
	hdr    http.Header
	hosts  []string // the request's Host fields
	body   body
	w      response
	tls    *tls.ConnectionState
	remote string
	// line holds a head line longer than br's buffer.
	line []byte
	// linger: the client may still be sending the request this
	// connection answered and is closing on; see lingerClose.
	linger bool
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, remote: nc.RemoteAddr().String()}
	c.setState(stateNew)
	return c
}

func (c *conn) setState(st int64) { c.st.Store(clock.Load()&^3 | st) }

func (c *conn) state() (int64, int64) {
	v := c.st.Load()
	return v & 3, v &^ 3
}

// readBufSize is a connection's read buffer: it holds a typical request
// head and small body in one read. Longer head lines are assembled in
// conn.line.
const readBufSize = 4 << 10

func (c *conn) serve(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			c.srv.Logger.Error("panic serving connection", "remote", c.remote, "panic", p, "stack", string(debug.Stack()))
		}
		cancel()
		if c.linger {
			c.lingerClose()
		}
		c.nc.Close()
		c.srv.forget(c)
	}()
	if c.srv.tlsConfig != nil {
		tc := tls.Server(c.nc, c.srv.tlsConfig)
		hctx, hcancel := context.WithTimeout(ctx, c.srv.ReadHeaderTimeout)
		err := tc.HandshakeContext(hctx)
		hcancel()
		if err != nil {
			return
		}
		st := tc.ConnectionState()
		c.tls, c.nc = &st, tc
	}
	c.br = bufio.NewReaderSize(c.nc, readBufSize)
	c.hdr = make(http.Header, 8)
	c.w.c = c
	c.w.header = make(http.Header, 8)
	// The request carries the connection's context; WithContext is the
	// only way to set it, and this copy is reused for every request.
	c.req = *(&http.Request{}).WithContext(ctx)
	for {
		if c.br.Buffered() == 0 {
			c.setState(stateIdle)
			if _, err := c.br.Peek(1); err != nil {
				return
			}
		}
		// A request that has begun to arrive is served even when the
		// server is shutting down; its response says the connection
		// closes.
		c.setState(stateHead)
		r, err := c.readRequest()
		if err != nil {
			c.setState(stateActive)
			c.refuse(err)
			return
		}
		c.setState(stateActive)
		keep := c.handle(r)
		if !keep || c.srv.closing.Load() {
			return
		}
	}
}

// handle runs the handler for r and finishes its response; it reports
// whether the connection can serve another request.
func (c *conn) handle(r *http.Request) bool {
	w := &c.w
	w.reset(r)
	c.srv.Handler.ServeHTTP(w, r)
	if err := w.finish(); err != nil {
		return false
	}
	if w.closeAfter || r.Close || !c.body.drain() {
		// Whatever of the body the handler left unread was read and
		// dropped, up to a limit, so that the next request starts where
		// it should (a response sent whole did this before its head
		// went out). Past the limit the connection closes.
		c.linger = !c.body.done && r.ContentLength != 0
		return false
	}
	return true
}

// lingerTime bounds how long a closing connection waits for its client to
// read the last response.
const lingerTime = 500 * time.Millisecond

// lingerClose ends the connection's sending side and reads (and drops)
// what the client still sends for a while before the connection closes:
// closing a socket with unread data in it resets the connection, and the
// client could lose the response it has not read yet (an error such as
// 413 for a body over the limit, answered before the body was all sent).
func (c *conn) lingerClose() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	io.Copy(io.Discard, io.LimitReader(c.nc, 4<<20))
}

// refuse answers a request whose head could not be read, when there is
// one to answer, and the connection closes.
func (c *conn) refuse(err error) {
	var he *headError
	if !errors.As(err, &he) {
		return // the connection failed or closed mid-head
	}
	msg := string(jsonstr.Append([]byte(`{"error":{"code":"BadRequest","message":`), he.msg)) + `}}`
	b := make([]byte, 0, 256)
	b = appendStatusLine(b, he.status)
	b = append(b, "Content-Type: application/json; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	b = appendInt(b, int64(len(msg)))
	b = append(b, "\r\n\r\n"...)
	b = append(b, msg...)
	c.nc.Write(b)
	c.linger = true
}

// headError is a request head that cannot be served, with the status to
// answer it with.
type headError struct {
	status int
	msg    string
}

func (e *headError) Error() string { return e.msg }

func badHead(status int, msg string) error { return &headError{status: status, msg: msg} }
