package httpserve

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// FuzzReadRequest reads arbitrary bytes as a request head and body. What
// the server accepts, net/http's reader must accept too, and both must
// read the same request from it.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"GET /digitaltwins/room-1?api-version=2023-10-31 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer x\r\n\r\n",
		"PATCH /digitaltwins/a HTTP/1.1\r\nhost: h\r\ncontent-length: 5\r\nIf-Match: *\r\n\r\n[{}]x",
		"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
		"GET http://h:80/x?y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a%2Fb%20c? HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close, x\r\n\r\n",
		"\r\nPUT //x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 0\r\nX: a\r\nX: b\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &conn{srv: &Server{MaxHeaderBytes: 64 << 10}, br: bufio.NewReader(bytes.NewReader(data)), hdr: http.Header{}}
		r, err := c.readRequest()
		if err != nil {
			return
		}
		ours, ourErr := io.ReadAll(r.Body)

		ref := data
		for range 2 {
			if bytes.HasPrefix(ref, []byte("\r\n")) {
				ref = ref[2:]
			} else if bytes.HasPrefix(ref, []byte("\n")) {
				ref = ref[1:]
			}
		}
		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(ref)))
		if err != nil {
			t.Fatalf("accepted what net/http refuses (%v): %q", err, data)
		}
		if r.Method != want.Method || r.RequestURI != want.RequestURI || r.Proto != want.Proto ||
			r.URL.String() != want.URL.String() || r.URL.Path != want.URL.Path || r.URL.RawQuery != want.URL.RawQuery ||
			r.Host != want.Host || r.ContentLength != want.ContentLength || r.Close != want.Close ||
			!reflect.DeepEqual(r.TransferEncoding, want.TransferEncoding) {
			t.Fatalf("read differently:\nours %s %q %s url=%q host=%q len=%d close=%v te=%v\nwant %s %q %s url=%q host=%q len=%d close=%v te=%v\nin %q",
				r.Method, r.RequestURI, r.Proto, r.URL, r.Host, r.ContentLength, r.Close, r.TransferEncoding,
				want.Method, want.RequestURI, want.Proto, want.URL, want.Host, want.ContentLength, want.Close, want.TransferEncoding, data)
		}
		if len(r.Header) != len(want.Header) {
			t.Fatalf("headers %v, want %v", r.Header, want.Header)
		}
		for k, vs := range want.Header {
			if !reflect.DeepEqual(r.Header[k], vs) {
				t.Fatalf("header %s: %q, want %q (in %q)", k, r.Header[k], vs, data)
			}
		}
		theirs, theirErr := io.ReadAll(want.Body)
		if ourErr == nil && theirErr == nil && !bytes.Equal(ours, theirs) {
			t.Fatalf("body %q, want %q (in %q)", ours, theirs, data)
		}
		if (ourErr == nil) != (theirErr == nil) && !strings.Contains(strings.ToLower(r.Header.Get("Trailer")+string(data)), "trailer") {
			// A chunked body's trailer rules differ in detail (net/http
			// checks declared trailers); otherwise both read it or neither.
			t.Fatalf("body errors differ: ours %v, net/http %v (in %q)", ourErr, theirErr, data)
		}
	})
}
