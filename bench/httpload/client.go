// Package httpload is the HTTP/1.1 client of the load generators.
//
// The generators share two cores with the server they measure, so every
// microsecond the client spends is one the server does not get. net/http's
// client costs about as much CPU per request as net/http's server (a
// Request, a Header map, a Response, goroutines per connection, context
// plumbing). This client does what a tool like wrk does: each connection
// is kept alive, a request is written with one system call from a reused
// buffer, and the response is parsed in place (status line, Content-Length
// or chunked body, Connection: close). It speaks plain HTTP/1.1 over TCP
// and does not pipeline: one request in flight per connection, as a
// browser or an SDK would.
package httpload

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

// Client sends requests over a fixed number of keep-alive connections.
// It is safe for concurrent use; a call waits for a free connection.
type Client struct {
	addr  string
	host  string
	conns chan *conn
	// Timeout bounds each request (write and whole response).
	Timeout time.Duration
}

type conn struct {
	nc  net.Conn
	br  *bufio.Reader
	req []byte
}

// New returns a client of the server at base (an http:// URL) with n
// connections, dialled on first use.
func New(base string, n int) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("httpload: %s: only http:// is supported", base)
	}
	c := &Client{addr: u.Host, host: u.Host, conns: make(chan *conn, n), Timeout: 30 * time.Second}
	for range n {
		c.conns <- &conn{}
	}
	return c, nil
}

// Close closes the idle connections. Calls in flight keep theirs.
func (c *Client) Close() {
	for {
		select {
		case cn := <-c.conns:
			if cn.nc != nil {
				cn.nc.Close()
			}
		default:
			return
		}
	}
}

// Header is a request header line's name and value.
type Header struct{ Name, Value string }

// Do sends a request and appends the response body to dst. headers are
// written as given; Host and Content-Length are added.
func (c *Client) Do(method, path string, headers []Header, body, dst []byte) (status int, out []byte, err error) {
	cn := <-c.conns
	defer func() { c.conns <- cn }()
	for attempt := 0; ; attempt++ {
		fresh := cn.nc == nil
		if fresh {
			nc, err := net.DialTimeout("tcp", c.addr, c.Timeout)
			if err != nil {
				return 0, dst, err
			}
			cn.nc, cn.br = nc, bufio.NewReaderSize(nc, 64<<10)
		}
		status, out, err = c.roundTrip(cn, method, path, headers, body, dst)
		if err == nil {
			return status, out, nil
		}
		cn.nc.Close()
		cn.nc = nil
		if _, ok := err.(errClosing); ok {
			return status, out, nil
		}
		// A kept-alive connection the server closed while idle fails on
		// first use; one retry on a fresh one, as net/http does for
		// requests that were never answered.
		if fresh || attempt > 0 || !errors.Is(err, errNoResponse) {
			return 0, dst, err
		}
	}
}

var errNoResponse = errors.New("httpload: connection closed before a response")

func (c *Client) roundTrip(cn *conn, method, path string, headers []Header, body, dst []byte) (int, []byte, error) {
	b := cn.req[:0]
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.host...)
	b = append(b, "\r\n"...)
	for _, h := range headers {
		b = append(b, h.Name...)
		b = append(b, ": "...)
		b = append(b, h.Value...)
		b = append(b, "\r\n"...)
	}
	if body != nil || method == "POST" || method == "PUT" || method == "PATCH" {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	if c.Timeout > 0 {
		cn.nc.SetDeadline(time.Now().Add(c.Timeout))
	}
	if len(body) <= 4<<10 {
		b = append(b, body...)
		cn.req = b
		if _, err := cn.nc.Write(b); err != nil {
			return 0, dst, err
		}
	} else {
		// A large body is not copied: head and body go out in one
		// writev.
		cn.req = b
		bufs := net.Buffers{b, body}
		if _, err := bufs.WriteTo(cn.nc); err != nil {
			return 0, dst, err
		}
	}
	return readResponse(cn.br, method == "HEAD", dst)
}

// readResponse reads one response from br, appending its body to dst.
func readResponse(br *bufio.Reader, head bool, dst []byte) (int, []byte, error) {
	line, err := readLine(br)
	if err != nil {
		if err == io.EOF || errors.Is(err, net.ErrClosed) || isReset(err) {
			return 0, dst, errNoResponse
		}
		return 0, dst, err
	}
	// HTTP/1.1 200 OK
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, dst, fmt.Errorf("httpload: malformed status line %q", line)
	}
	status := 0
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return 0, dst, fmt.Errorf("httpload: malformed status line %q", line)
		}
		status = status*10 + int(d-'0')
	}
	if status < 100 {
		return 0, dst, fmt.Errorf("httpload: malformed status line %q", line)
	}
	length, chunked, closing := int64(-1), false, false
	for {
		line, err := readLine(br)
		if err != nil {
			return 0, dst, err
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return 0, dst, fmt.Errorf("httpload: malformed header %q", line)
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case equalFold(name, "Content-Length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 {
				return 0, dst, fmt.Errorf("httpload: bad Content-Length %q", value)
			}
			length = n
		case equalFold(name, "Transfer-Encoding"):
			chunked = equalFold(value, "chunked")
		case equalFold(name, "Connection"):
			closing = equalFold(value, "close")
		}
	}
	switch {
	case head || status == 204 || status == 304 || status/100 == 1:
	case chunked:
		if dst, err = readChunked(br, dst); err != nil {
			return 0, dst, err
		}
	case length >= 0:
		if dst, err = readN(br, dst, length); err != nil {
			return 0, dst, err
		}
	default:
		// No length: the body runs to the end of the connection.
		rest, err := io.ReadAll(br)
		if err != nil {
			return 0, dst, err
		}
		dst = append(dst, rest...)
		closing = true
	}
	if closing {
		return status, dst, errClosing{status}
	}
	return status, dst, nil
}

// errClosing reports a complete response after which the server closes the
// connection. Do turns it into success after dropping the connection.
type errClosing struct{ status int }

func (e errClosing) Error() string { return "httpload: server closed the connection" }

func readN(br *bufio.Reader, dst []byte, n int64) ([]byte, error) {
	for n > 0 {
		// Peek of at most the buffer's size waits for that many bytes.
		p, err := br.Peek(min(int(n), br.Size()))
		if err != nil {
			return dst, fmt.Errorf("httpload: body cut short: %w", err)
		}
		dst = append(dst, p...)
		br.Discard(len(p))
		n -= int64(len(p))
	}
	return dst, nil
}

func readChunked(br *bufio.Reader, dst []byte) ([]byte, error) {
	for {
		line, err := readLine(br)
		if err != nil {
			return dst, err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return dst, fmt.Errorf("httpload: bad chunk size %q", line)
		}
		if size == 0 {
			// Trailers, then the blank line.
			for {
				line, err := readLine(br)
				if err != nil {
					return dst, err
				}
				if len(line) == 0 {
					return dst, nil
				}
			}
		}
		if dst, err = readN(br, dst, size); err != nil {
			return dst, err
		}
		if line, err := readLine(br); err != nil || len(line) != 0 {
			return dst, fmt.Errorf("httpload: chunk not followed by CRLF")
		}
	}
}

// readLine returns a line without its CRLF, valid until the next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return nil, errors.New("httpload: header line too long")
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}
