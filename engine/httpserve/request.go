package httpserve

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
)

// readRequest reads the next request's head from c.br into c.req.
func (c *conn) readRequest() (*http.Request, error) {
	budget := c.srv.MaxHeaderBytes
	line, err := c.readLine(&budget)
	if err != nil {
		return nil, err
	}
	// A blank line or two before a request are tolerated (RFC 9112 2.2).
	for i := 0; len(line) == 0 && i < 2; i++ {
		if line, err = c.readLine(&budget); err != nil {
			return nil, err
		}
	}
	r := &c.req
	method, target, proto, ok := splitRequestLine(line)
	if !ok {
		return nil, badHead(400, "malformed request line")
	}
	if !isToken(method) {
		return nil, badHead(400, "invalid method")
	}
	vers, major, minor, ok := parseVersion(proto)
	if !ok {
		return nil, badHead(400, "malformed HTTP version")
	}
	if major != 1 {
		return nil, badHead(505, "HTTP version not supported")
	}
	r.Method = internMethod(method)
	r.Proto, r.ProtoMajor, r.ProtoMinor = vers, major, minor
	if err := c.parseTarget(r, target); err != nil {
		return nil, err
	}
	if err := c.readHeader(&budget); err != nil {
		return nil, err
	}
	r.Header = c.hdr
	r.RemoteAddr = c.remote
	r.TLS = c.tls
	r.Form, r.PostForm, r.MultipartForm, r.Trailer = nil, nil, nil, nil
	r.Response, r.GetBody, r.Pattern = nil, nil, ""
	r.TransferEncoding = nil

	// Host: required of HTTP/1.1 (RFC 9112 3.2); an absolute target's
	// authority wins over it. Like net/http, the field is not left in
	// the header map.
	hosts := c.hosts
	if len(hosts) > 1 {
		return nil, badHead(400, "too many Host headers")
	}
	if r.URL.Host != "" {
		r.Host = r.URL.Host
	} else if len(hosts) == 1 {
		r.Host = hosts[0]
	} else if minor >= 1 {
		return nil, badHead(400, "missing required Host header")
	} else {
		r.Host = ""
	}
	if len(hosts) == 1 && !validHost(hosts[0]) {
		return nil, badHead(400, "malformed Host header")
	}

	r.Close = shouldClose(minor, c.hdr)
	return r, c.setBody(r)
}

// readLine returns the next head line without its line ending, charging
// its length to budget. The line is valid until the next read.
func (c *conn) readLine(budget *int) ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		c.line = append(c.line[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(c.line) > *budget {
				return nil, badHead(431, "request head too large")
			}
			line, err = c.br.ReadSlice('\n')
			c.line = append(c.line, line...)
		}
		line = c.line
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if *budget -= len(line); *budget < 0 {
		return nil, badHead(431, "request head too large")
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func splitRequestLine(line []byte) (method, target, proto []byte, ok bool) {
	i := bytes.IndexByte(line, ' ')
	if i <= 0 {
		return nil, nil, nil, false
	}
	rest := line[i+1:]
	j := bytes.IndexByte(rest, ' ')
	if j <= 0 {
		return nil, nil, nil, false
	}
	return line[:i], rest[:j], rest[j+1:], true
}

// parseVersion parses a request line's HTTP version; the two versions
// clients send are recognized without a copy of the bytes.
func parseVersion(p []byte) (vers string, major, minor int, ok bool) {
	switch string(p) {
	case "HTTP/1.1":
		return "HTTP/1.1", 1, 1, true
	case "HTTP/1.0":
		return "HTTP/1.0", 1, 0, true
	}
	vers = string(p)
	major, minor, ok = http.ParseHTTPVersion(vers)
	return vers, major, minor, ok
}

var methods = [...]string{"GET", "PUT", "PATCH", "POST", "DELETE", "HEAD", "OPTIONS"}

func internMethod(m []byte) string {
	for _, s := range methods {
		if string(m) == s {
			return s
		}
	}
	return string(m)
}

// isToken reports whether s is an RFC 9110 token: a method or a field
// name.
func isToken[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return len(s) > 0
}

// parseTarget sets r's URL and RequestURI from the request target. An
// origin-form target ("/path?query") reuses the connection's URL and the
// previous target's string when unchanged; other forms go through
// url.ParseRequestURI, as net/http does.
func (c *conn) parseTarget(r *http.Request, target []byte) error {
	if len(target) == 0 {
		return badHead(400, "empty request target")
	}
	for _, ch := range target {
		if ch <= ' ' || ch == 0x7f {
			return badHead(400, "invalid character in request target")
		}
	}
	if r.RequestURI != string(target) {
		r.RequestURI = string(target)
	}
	uri := r.RequestURI
	path, query, _ := strings.Cut(uri, "?")
	if plainPath(path) && strings.IndexByte(query, '#') < 0 {
		c.url = url.URL{Path: path, RawQuery: query, ForceQuery: query == "" && strings.HasSuffix(uri, "?")}
		r.URL = &c.url
		return nil
	}
	if r.Method == "CONNECT" {
		return badHead(405, "CONNECT is not supported")
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return badHead(400, "malformed request target")
	}
	r.URL = u
	return nil
}

// plainPath reports whether p is an absolute path that url.URL keeps as it
// is: no escapes, and only characters its EscapedPath leaves alone.
func plainPath(p string) bool {
	if len(p) == 0 || p[0] != '/' || strings.HasPrefix(p, "//") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if !pathChars[p[i]] {
			return false
		}
	}
	return true
}

var pathChars = charTable("-_.~$&+,/:;=@")

// readHeader reads header fields into c.hdr, reusing the map, its value
// slices, and value strings equal to the previous request's.
func (c *conn) readHeader(budget *int) error {
	h := c.hdr
	for k, vs := range h {
		h[k] = vs[:0]
	}
	c.hosts = c.hosts[:0]
	for {
		line, err := c.readLine(budget)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return badHead(400, "obsolete line folding in header")
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return badHead(400, "malformed header line")
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		key, ok := canonicalKey(name)
		if !ok {
			return badHead(400, "invalid header name")
		}
		if !validValue(value) {
			return badHead(400, "invalid header value")
		}
		if key == "Host" {
			c.hosts = appendValue(c.hosts, value)
			continue
		}
		h[key] = appendValue(h[key], value)
	}
	for k, vs := range h {
		if len(vs) == 0 {
			delete(h, k)
		}
	}
	return nil
}

// validValue reports whether a field value has no control characters but
// tab.
func validValue(v []byte) bool {
	for _, ch := range v {
		if ch < ' ' && ch != '\t' || ch == 0x7f {
			return false
		}
	}
	return true
}

// appendValue appends value to vs, reusing the string the slice held in
// that place for the previous request when it is the same.
func appendValue(vs []string, value []byte) []string {
	if n := len(vs); n < cap(vs) && vs[:n+1][n] == string(value) {
		return vs[:n+1]
	}
	return append(vs, string(value))
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// commonKeys maps the lower-case form of common header names to their
// canonical form, so that reading them allocates nothing.
var commonKeys = map[string]string{}

func init() {
	for _, k := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Connection", "Content-Length", "Content-Type", "Expect", "Host", "If-Match",
		"If-None-Match", "Keep-Alive", "Origin", "Referer", "Te", "Traceparent", "Transfer-Encoding",
		"User-Agent", "X-Ms-Client-Request-Id", "Message-Id", "Telemetry-Source-Time",
		"Content-Encoding", "Upgrade", "X-Forwarded-For", "Cookie",
	} {
		commonKeys[strings.ToLower(k)] = k
	}
}

// canonicalKey returns name's canonical form (textproto's), and whether
// it is a valid field name.
func canonicalKey(name []byte) (string, bool) {
	if !isToken(name) {
		return "", false
	}
	var buf [32]byte
	if len(name) <= len(buf) {
		lower := buf[:len(name)]
		for i, ch := range name {
			if 'A' <= ch && ch <= 'Z' {
				ch += 'a' - 'A'
			}
			lower[i] = ch
		}
		if k, ok := commonKeys[string(lower)]; ok {
			return k, true
		}
	}
	return textproto.CanonicalMIMEHeaderKey(string(name)), true
}

var tokenChars = charTable("!#$%&'*+-.^_`|~")

// charTable returns a table of the letters, digits and extra.
func charTable(extra string) (t [256]bool) {
	for ch := 'a'; ch <= 'z'; ch++ {
		t[ch] = true
	}
	for ch := 'A'; ch <= 'Z'; ch++ {
		t[ch] = true
	}
	for ch := '0'; ch <= '9'; ch++ {
		t[ch] = true
	}
	for _, ch := range extra {
		t[ch] = true
	}
	return t
}

// validHost accepts what net/http accepts in a Host header: host name,
// IPv4 or bracketed IPv6 address, optional port, and the characters of
// RFC 3986's reg-name.
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		ch := h[i]
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:[]%@", ch) >= 0:
		default:
			return false
		}
	}
	return true
}

// shouldClose reports whether the client asks for the connection to close
// after this request: HTTP/1.0 unless it asks to keep it alive, HTTP/1.1
// when it says close.
func shouldClose(minor int, h http.Header) bool {
	conn := h["Connection"]
	if minor == 0 {
		for _, v := range conn {
			if hasToken(v, "keep-alive") {
				return false
			}
		}
		return true
	}
	for _, v := range conn {
		if hasToken(v, "close") {
			return true
		}
	}
	return false
}

// hasToken reports whether the comma-separated list v has token, in any
// case.
func hasToken(v, token string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// setBody sets r's body from its framing headers (RFC 9112 6).
func (c *conn) setBody(r *http.Request) error {
	b := &c.body
	*b = body{c: c}
	te := c.hdr["Transfer-Encoding"]
	cl := c.hdr["Content-Length"]
	if len(te) > 0 {
		if len(cl) > 0 {
			// Both framings: a request smuggling vector; refuse it.
			return badHead(400, "both Transfer-Encoding and Content-Length")
		}
		if r.ProtoMinor == 0 {
			return badHead(400, "Transfer-Encoding in an HTTP/1.0 request")
		}
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
			return badHead(501, "unsupported Transfer-Encoding")
		}
		r.TransferEncoding = []string{"chunked"}
		delete(c.hdr, "Transfer-Encoding") // as net/http does
		r.ContentLength = -1
		b.chunked = httputil.NewChunkedReader(c.br)
	} else {
		n := int64(0)
		if len(cl) > 0 {
			for _, v := range cl[1:] {
				if v != cl[0] {
					return badHead(400, "conflicting Content-Length headers")
				}
			}
			if len(cl) > 1 {
				c.hdr["Content-Length"] = cl[:1] // as net/http does
			}
			var ok bool
			if n, ok = parseLength(cl[0]); !ok {
				return badHead(400, "malformed Content-Length")
			}
		}
		r.ContentLength = n
		b.left = n
	}
	if ex := c.hdr["Expect"]; len(ex) > 0 {
		if len(ex) != 1 || !strings.EqualFold(ex[0], "100-continue") {
			return badHead(417, "unsupported Expect")
		}
		b.continueOwed = r.ProtoMinor >= 1 && (r.ContentLength != 0)
	}
	if r.ContentLength == 0 {
		r.Body = http.NoBody
	} else {
		r.Body = b
	}
	return nil
}

func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// body reads a request's body from the connection: Content-Length bytes,
// or chunks. The first read of a body sent with "Expect: 100-continue"
// tells the client to go on.
type body struct {
	c            *conn
	left         int64     // bytes left, for a Content-Length body
	chunked      io.Reader // for a chunked body
	continueOwed bool
	closed       bool
	done         bool // read to its end
	err          error
}

var errBodyClosed = errors.New("httpserve: read on closed request body")

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errBodyClosed
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.continueOwed {
		b.continueOwed = false
		if _, err := b.c.nc.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n")); err != nil {
			b.err = err
			return 0, err
		}
	}
	if b.chunked != nil {
		n, err := b.chunked.Read(p)
		if err == io.EOF {
			b.done = true
			// The chunked reader stops at the terminating chunk; its
			// trailer section (none, or fields we ignore) ends the body.
			if terr := b.skipTrailer(); terr != nil {
				err = terr
			}
		}
		if err != nil {
			b.err = err
		}
		return n, err
	}
	if b.left == 0 {
		b.done = true
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.c.br.Read(p)
	b.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.err = err
	} else if b.left == 0 {
		b.done = true
	}
	return n, err
}

// skipTrailer reads the trailer section after a chunked body's last chunk
// and drops it. Its lines must end in CRLF, as net/http requires of them.
func (b *body) skipTrailer() error {
	budget := b.c.srv.MaxHeaderBytes
	for {
		line, err := b.c.br.ReadSlice('\n')
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		if err == bufio.ErrBufferFull || err == nil && (len(line) < 2 || line[len(line)-2] != '\r') {
			return errors.New("httpserve: malformed trailer after chunked body")
		}
		if err != nil {
			return err
		}
		if budget -= len(line); budget < 0 {
			return errors.New("httpserve: trailer too large")
		}
		if len(line) == 2 {
			return nil
		}
		if colon := bytes.IndexByte(line, ':'); colon <= 0 || !isToken(line[:colon]) || !validValue(line[colon+1:len(line)-2]) {
			return errors.New("httpserve: malformed trailer after chunked body")
		}
	}
}

func (b *body) Close() error {
	b.closed = true
	return nil
}

// drainMax is how much of an unread body is read and dropped to keep a
// connection; past it the connection closes instead.
const drainMax = 256 << 10

// drain reads what the handler left of the body and reports whether the
// connection is still in step with its client.
func (b *body) drain() bool {
	if b.c.req.ContentLength == 0 || b.done {
		return b.err == nil || b.done
	}
	if b.continueOwed {
		// The client waits for a go-ahead it will not get; it may or may
		// not send the body anyway, so the connection cannot continue.
		return false
	}
	if b.err != nil {
		return false
	}
	b.closed = false
	n, err := io.Copy(io.Discard, io.LimitReader(b, drainMax+1))
	return err == nil && n <= drainMax && b.done
}
