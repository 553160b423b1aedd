package httpserve_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/httpserve"
)

// start serves h on a loopback port and returns its base URL.
func start(t *testing.T, s *httpserve.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, httpserve.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// echo answers with what it saw of the request.
func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "%s %s q=%s host=%s len=%d te=%v close=%v auth=%s body=%s",
		r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.ContentLength, r.TransferEncoding, r.Close, r.Header.Get("Authorization"), b)
}

func TestKeepAliveAndBodies(t *testing.T) {
	var conns atomic.Int32
	s := &httpserve.Server{Handler: http.HandlerFunc(echo), ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
		conns.Add(1)
		return ctx
	}}
	base := start(t, s)
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer cl.CloseIdleConnections()
	for i := range 20 {
		var req *http.Request
		switch i % 3 {
		case 0:
			req, _ = http.NewRequest("GET", base+"/a/b?x=1&y=2", nil)
		case 1:
			req, _ = http.NewRequest("PATCH", base+"/twins/t1", strings.NewReader(`[{"op":"add"}]`))
		case 2:
			// Unknown length: sent chunked.
			pr, pw := io.Pipe()
			go func() { pw.Write([]byte("chunk-one,")); pw.Write([]byte("chunk-two")); pw.Close() }()
			req, _ = http.NewRequest("POST", base+"/p", pr)
		}
		req.Header.Set("Authorization", fmt.Sprintf("Bearer t%d", i%2))
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := string(b)
		want := map[int]string{
			0: "GET /a/b q=x=1&y=2 host=" + strings.TrimPrefix(base, "http://") + " len=0 te=[] close=false auth=Bearer t" + fmt.Sprint(i%2) + " body=",
			1: `PATCH /twins/t1 q= host=` + strings.TrimPrefix(base, "http://") + ` len=14 te=[] close=false auth=Bearer t` + fmt.Sprint(i%2) + ` body=[{"op":"add"}]`,
			2: "POST /p q= host=" + strings.TrimPrefix(base, "http://") + " len=-1 te=[chunked] close=false auth=Bearer t" + fmt.Sprint(i%2) + " body=chunk-one,chunk-two",
		}[i%3]
		if resp.StatusCode != 200 || got != want {
			t.Fatalf("request %d: %d %q, want %q", i, resp.StatusCode, got, want)
		}
		if resp.ContentLength != int64(len(want)) || resp.Header.Get("Date") == "" {
			t.Fatalf("request %d: Content-Length %d, Date %q", i, resp.ContentLength, resp.Header.Get("Date"))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("20 requests used %d connections, want 1", n)
	}
}

func TestLargeAndStreamedResponses(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320,000 bytes
	s := &httpserve.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write(big[:100])
			w.Write(big[100:])
		case "/flush":
			w.Write([]byte("first;"))
			w.(http.Flusher).Flush()
			w.Write([]byte("second"))
		case "/declared":
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			w.Write(big)
		case "/nocontent":
			w.WriteHeader(204)
			w.Write([]byte("dropped"))
		case "/sniff":
			w.Write([]byte("<html><body>hi</body></html>"))
		}
	})}
	base := start(t, s)
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer cl.CloseIdleConnections()
	for _, tc := range []struct {
		path    string
		status  int
		body    string
		chunked bool
		ctype   string
	}{
		{"/big", 200, string(big), true, "text/plain; charset=utf-8"},
		{"/flush", 200, "first;second", true, "text/plain; charset=utf-8"},
		{"/declared", 200, string(big), false, "text/plain; charset=utf-8"},
		{"/nocontent", 204, "", false, ""},
		{"/sniff", 200, "<html><body>hi</body></html>", false, "text/html; charset=utf-8"},
		{"/big", 200, string(big), true, "text/plain; charset=utf-8"},
	} {
		resp, err := cl.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		chunked := len(resp.TransferEncoding) > 0
		if resp.StatusCode != tc.status || string(b) != tc.body || chunked != tc.chunked || resp.Header.Get("Content-Type") != tc.ctype {
			t.Fatalf("%s: %d chunked=%v type=%q body %d bytes; want %d chunked=%v type=%q %d bytes",
				tc.path, resp.StatusCode, chunked, resp.Header.Get("Content-Type"), len(b), tc.status, tc.chunked, tc.ctype, len(tc.body))
		}
	}
	// HEAD has the GET's headers and no body.
	resp, err := cl.Head(base + "/declared")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ContentLength != int64(len(big)) {
		t.Fatalf("HEAD: Content-Length %d", resp.ContentLength)
	}
	// A HEAD of a handler that writes a small body: the GET's length and
	// type, no body, and the connection goes on.
	resp, err = cl.Head(base + "/sniff")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ContentLength != 28 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("HEAD /sniff: Content-Length %d, type %q", resp.ContentLength, resp.Header.Get("Content-Type"))
	}
	resp, err = cl.Head(base + "/big")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(resp.TransferEncoding) != 0 {
		t.Fatalf("HEAD /big: %d %v", resp.StatusCode, resp.TransferEncoding)
	}
	if resp, err := cl.Get(base + "/sniff"); err != nil {
		t.Fatalf("GET after HEAD: %v", err)
	} else if b, _ := io.ReadAll(resp.Body); string(b) != "<html><body>hi</body></html>" {
		t.Fatalf("GET after HEAD: %q", b)
	}
}

func TestExpectContinue(t *testing.T) {
	s := &httpserve.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			http.Error(w, "no", 403)
			return
		}
		echo(w, r)
	})}
	base := start(t, s)
	var sawContinue atomic.Bool
	cl := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 30 * time.Second}}
	defer cl.CloseIdleConnections()
	req, _ := http.NewRequest("PUT", base+"/x", strings.NewReader("payload"))
	req.Header.Set("Expect", "100-continue")
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{Got100Continue: func() { sawContinue.Store(true) }}))
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !sawContinue.Load() || !strings.HasSuffix(string(b), "body=payload") {
		t.Fatalf("continue %v, body %q", sawContinue.Load(), b)
	}
	// A handler that answers without reading: the client never sends the
	// body, and the connection is not reused.
	req, _ = http.NewRequest("PUT", base+"/refuse", strings.NewReader("payload"))
	req.Header.Set("Expect", "100-continue")
	resp, err = cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || !resp.Close {
		t.Fatalf("refused: %d close=%v", resp.StatusCode, resp.Close)
	}
}

// raw sends text on a new connection and returns everything the server
// answers until it closes the connection or goes quiet.
func raw(t *testing.T, base, text string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestRawRequests(t *testing.T) {
	s := &httpserve.Server{Handler: http.HandlerFunc(echo), MaxHeaderBytes: 4096}
	base := start(t, s)
	for _, tc := range []struct {
		name, in string
		want     []string // substrings of the answer, in order
		closes   bool
	}{
		{"pipelined", "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"GET /1 ", "GET /2 ", "Connection: close", "GET /3 "}, true},
		{"http/1.0", "GET /old HTTP/1.0\r\n\r\n", []string{"HTTP/1.1 200 OK", "Connection: close", "GET /old q= host= len=0"}, true},
		{"http/1.0 keep-alive", "GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /k2 HTTP/1.0\r\n\r\n",
			[]string{"Connection: keep-alive", "GET /k ", "Connection: close", "GET /k2 "}, true},
		{"lowercase headers", "POST /lc HTTP/1.1\r\nhost: h\r\ncontent-length: 3\r\nauthorization: Bearer z\r\nconnection: close\r\n\r\nabc",
			[]string{"POST /lc q= host=h len=3 te=[] close=true auth=Bearer z body=abc"}, true},
		{"bad method", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", []string{"400 Bad Request", `"invalid method"`}, true},
		{"missing host", "GET / HTTP/1.1\r\n\r\n", []string{"400 Bad Request", "missing required Host header"}, true},
		{"te and cl", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			[]string{"400 Bad Request", "both Transfer-Encoding and Content-Length"}, true},
		{"two lengths", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
			[]string{"400 Bad Request", "conflicting Content-Length"}, true},
		{"gzip te", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", []string{"501 Not Implemented"}, true},
		{"expect", "POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\na", []string{"417 Expectation Failed"}, true},
		{"version", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", []string{"505 HTTP Version Not Supported"}, true},
		{"folding", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  2\r\n\r\n", []string{"400 Bad Request", "folding"}, true},
		{"space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", []string{"400 Bad Request", "invalid header name"}, true},
		{"huge head", "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("a", 5000) + "\r\n\r\n", []string{"431 Request Header Fields Too Large"}, true},
		{"chunked with trailer", "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"body=abcde", "GET /after "}, true},
		{"absolute form", "GET http://example.com/abs?q=1 HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n", []string{"GET /abs q=q=1 host=example.com"}, true},
		{"escaped path", "GET /a%20b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", []string{"GET /a b "}, true},
		{"short body", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc", []string{"400 Bad Request", "unexpected EOF"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if tc.name == "short body" {
				// Half-close so the server sees the body end early.
				c, _ := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
				defer c.Close()
				io.WriteString(c, in)
				c.(*net.TCPConn).CloseWrite()
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				b, _ := io.ReadAll(c)
				checkOrder(t, string(b), tc.want)
				return
			}
			checkOrder(t, raw(t, base, in), tc.want)
		})
	}
}

func checkOrder(t *testing.T, got string, want []string) {
	t.Helper()
	rest := got
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("answer lacks %q (in order):\n%s", w, got)
		}
		rest = rest[i+len(w):]
	}
}

func TestShutdownWaitsForRequests(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	s := &httpserve.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		w.Write([]byte("done"))
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	// An idle kept-alive connection, and one busy in a request.
	idle := &http.Client{Transport: &http.Transport{}}
	if resp, err := idle.Get(base + "/fast"); err != nil {
		t.Fatal(err)
	} else {
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-entered
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if b := <-got; b != "done" {
		t.Fatalf("request in flight got %q", b)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, httpserve.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

func TestTimeoutsCloseConnections(t *testing.T) {
	s := &httpserve.Server{Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}
	base := start(t, s)
	addr := strings.TrimPrefix(base, "http://")
	for _, prefix := range []string{
		"",                                  // idle: nothing sent
		"GET / HTTP/1.1\r\nHost: h\r\n",     // a head that never ends
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n", // one request, then idle
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, prefix)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadAll(c)
		c.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("after %q: the server kept the connection open", prefix)
		}
	}
}

func TestTLS(t *testing.T) {
	// httptest's certificate, and a client that trusts it.
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	cfg, client := ts.TLS, ts.Client()
	ts.Close()
	s := &httpserve.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || !r.TLS.HandshakeComplete {
			http.Error(w, "no TLS state", 500)
			return
		}
		fmt.Fprintf(w, "%s over %s", r.URL.Path, r.Proto)
	}), TLSConfig: &tls.Config{Certificates: cfg.Certificates, NextProtos: []string{"h2", "http/1.1"}}}
	base := strings.Replace(start(t, s), "http://", "https://", 1)
	client.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	for range 3 {
		resp, err := client.Get(base + "/secure")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "/secure over HTTP/1.1" || resp.ProtoMajor != 1 {
			t.Fatalf("%d %s %q", resp.StatusCode, resp.Proto, b)
		}
	}
	// Plain HTTP to a TLS port is not served.
	if out := raw(t, strings.Replace(base, "https://", "http://", 1), "GET / HTTP/1.1\r\nHost: h\r\n\r\n"); strings.Contains(out, "200 OK") {
		t.Fatalf("plain request answered: %q", out)
	}
}

func TestUnreadBodies(t *testing.T) {
	var n atomic.Int32
	s := &httpserve.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Write([]byte("ignored your body"))
	})}
	base := start(t, s)
	// A small unread body is skipped and the connection goes on.
	out := raw(t, base, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	if strings.Count(out, "ignored your body") != 2 {
		t.Fatalf("two answers expected:\n%s", out)
	}
	// A large unread body closes the connection after the answer.
	c, _ := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	defer c.Close()
	go func() {
		io.WriteString(c, "POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 10000000\r\n\r\n")
		c.Write(make([]byte, 10000000))
	}()
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
