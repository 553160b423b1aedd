package httpserve

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// bufMax is how much of a response body is held back so that it can go
// out with a Content-Length; past it the response is sent chunked.
const bufMax = 64 << 10

// keepBuf is the largest body buffer a connection keeps between requests.
const keepBuf = 16 << 10

// response is a connection's http.ResponseWriter, reset for each request.
type response struct {
	c      *conn
	req    *http.Request
	header http.Header
	status int
	// wroteHeader: the handler set the status; sent: the head went out.
	wroteHeader, sent bool
	// chunked: the body goes out in chunks; bodyOK: the status allows a
	// body; isHead: the request is a HEAD, whose response is a GET's
	// without the body (the handler writes it; it is not sent).
	chunked, bodyOK, isHead bool
	// declared is the handler's Content-Length, or -1.
	declared int64
	written  int64
	// closeAfter: the connection closes after this response.
	closeAfter bool
	buf        []byte
	head       []byte
	err        error
}

func (w *response) reset(r *http.Request) {
	clear(w.header)
	w.req = r
	w.status, w.wroteHeader, w.sent, w.chunked, w.bodyOK = 0, false, false, false, true
	w.isHead = r.Method == "HEAD"
	w.declared, w.written, w.closeAfter, w.err = -1, 0, false, nil
	w.buf = w.buf[:0]
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code < 200 && code != 101 {
		// An informational response (103 Early Hints) goes out now; the
		// handler writes its final status later.
		if w.sent {
			return
		}
		b := appendStatusLine(w.head[:0], code)
		b = w.appendHeader(b)
		b = append(b, "\r\n"...)
		w.head = b
		if _, err := w.c.nc.Write(b); err != nil && w.err == nil {
			w.err = err
		}
		return
	}
	w.wroteHeader, w.status = true, code
	w.bodyOK = code != 204 && code != 304
	if cl := w.header.Get("Content-Length"); cl != "" {
		if n, ok := parseLength(cl); ok {
			w.declared = n
		} else {
			w.header.Del("Content-Length")
		}
	}
}

// started sets the implicit 200 if the handler set no status, and
// returns the connection's error, if any.
func (w *response) started() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.err
}

func (w *response) Write(p []byte) (int, error) {
	if err := w.started(); err != nil {
		return 0, err
	}
	if !w.bodyOK {
		return 0, http.ErrBodyNotAllowed
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.sent && len(w.buf)+len(p) <= bufMax {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if !w.sent {
		if err := w.sendHead(false, p); err != nil {
			return 0, err
		}
	}
	if err := w.writeBody(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush sends the head and what is buffered (http.Flusher).
func (w *response) Flush() { w.FlushError() }

// FlushError is Flush that reports an error (http.ResponseController).
func (w *response) FlushError() error {
	if err := w.started(); err != nil {
		return err
	}
	if !w.sent {
		return w.sendHead(false, nil)
	}
	return nil
}

// finish completes the response after the handler returns.
func (w *response) finish() error {
	if err := w.started(); err != nil {
		return err
	}
	if !w.sent {
		if err := w.sendHead(true, nil); err != nil {
			return err
		}
	} else if w.chunked {
		if _, err := w.c.nc.Write([]byte("0\r\n\r\n")); err != nil {
			w.err = err
		}
	} else if w.declared >= 0 && w.written < w.declared && !w.isHead {
		// The handler declared more than it wrote: the client cannot
		// find the next response, so the connection ends here.
		w.closeAfter = true
	}
	if cap(w.buf) > keepBuf {
		w.buf = nil
	}
	if cap(w.head) > keepBuf {
		w.head = nil
	}
	return w.err
}

// sendHead writes the status line and headers, with the buffered body.
// complete means the handler has returned, so the body's length is known;
// next is what the handler is writing past the buffer.
func (w *response) sendHead(complete bool, next []byte) error {
	w.sent = true
	h := w.header
	if w.req.Close || w.c.srv.closing.Load() {
		w.closeAfter = true
	} else if complete && !w.c.body.drain() {
		// What the handler left of the request body could not be
		// skipped: say the connection ends, as net/http does.
		w.closeAfter = true
	}
	if _, haveType := h["Content-Type"]; !haveType && w.bodyOK && w.written > 0 {
		sample := w.buf
		if len(sample) == 0 {
			sample = next
		}
		h.Set("Content-Type", http.DetectContentType(sample))
	}
	b := appendStatusLine(w.head[:0], w.status)
	b = append(b, "Date: "...)
	b = append(b, date()...)
	b = append(b, "\r\n"...)
	b = w.appendHeader(b)
	switch {
	case w.declared >= 0 || !w.bodyOK:
		// The handler's own Content-Length goes out with its other
		// headers (a HEAD keeps it; a 204 has none).
	case complete:
		if !w.isHead || len(w.buf) > 0 {
			b = append(b, "Content-Length: "...)
			b = appendInt(b, int64(len(w.buf)))
			b = append(b, "\r\n"...)
		}
	case w.isHead:
		// A HEAD whose GET would be sent chunked: no length to give.
	case w.req.ProtoMinor >= 1:
		w.chunked = true
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	default:
		// HTTP/1.0 without a length: the body ends with the connection.
		w.closeAfter = true
	}
	if w.closeAfter {
		b = append(b, "Connection: close\r\n"...)
	} else if w.req.ProtoMinor == 0 {
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	b = append(b, "\r\n"...)
	w.head = b
	body := w.buf
	w.buf = w.buf[:0]
	var err error
	switch {
	case len(body) == 0 || w.isHead:
		_, err = w.c.nc.Write(b)
	case w.chunked:
		bufs := net.Buffers{b, chunkHeader(len(body)), body, crlf}
		_, err = bufs.WriteTo(w.c.nc)
	case len(b)+len(body) <= 4<<10:
		// A small response: one buffer, one write.
		w.head = append(b, body...)
		_, err = w.c.nc.Write(w.head)
	default:
		bufs := net.Buffers{b, body}
		_, err = bufs.WriteTo(w.c.nc)
	}
	if err != nil {
		w.err = err
	}
	return err
}

var crlf = []byte("\r\n")

func chunkHeader(n int) []byte {
	b := strconv.AppendInt(make([]byte, 0, 10), int64(n), 16)
	return append(b, '\r', '\n')
}

// writeBody writes p after the head has gone out.
func (w *response) writeBody(p []byte) error {
	if len(p) == 0 || w.isHead {
		return nil
	}
	var err error
	if w.chunked {
		bufs := net.Buffers{chunkHeader(len(p)), p, crlf}
		_, err = bufs.WriteTo(w.c.nc)
	} else {
		_, err = w.c.nc.Write(p)
	}
	if err != nil {
		w.err = err
	}
	return err
}

// appendHeader appends the handler's header fields. Values have CR and LF
// replaced by spaces, so that no value can end the head early.
func (w *response) appendHeader(b []byte) []byte {
	for k, vs := range w.header {
		if k == "Date" || k == "Connection" || k == "Transfer-Encoding" || !isToken(k) {
			continue
		}
		if k == "Content-Length" && (w.declared < 0 || w.status == 204) {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			start := len(b)
			b = append(b, v...)
			for i := start; i < len(b); i++ {
				if b[i] == '\r' || b[i] == '\n' {
					b[i] = ' '
				}
			}
			b = append(b, "\r\n"...)
		}
	}
	return b
}

// statusLines holds the status lines of the common codes.
var statusLines = func() map[int]string {
	m := map[int]string{}
	for code := 100; code < 600; code++ {
		if t := http.StatusText(code); t != "" {
			m[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + t + "\r\n"
		}
	}
	return m
}()

func appendStatusLine(b []byte, code int) []byte {
	if s, ok := statusLines[code]; ok {
		return append(b, s...)
	}
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	return append(b, " status code\r\n"...)
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

// dateCache holds the Date header's value for the current second.
type dateValue struct {
	sec int64
	s   string
}

var dateCache atomic.Pointer[dateValue]

func date() string {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.s
	}
	d := &dateValue{sec: sec, s: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.s
}

var _ interface {
	http.ResponseWriter
	http.Flusher
} = (*response)(nil)
