package httpload

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func testServer(t testing.TB) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Auth", r.Header.Get("Authorization"))
		w.WriteHeader(201)
		w.Write(b)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		// More than net/http buffers: sent chunked.
		for i := range n {
			io.WriteString(w, strconv.Itoa(i%10))
		}
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no such thing", 404) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestClient(t *testing.T) {
	srv := testServer(t)
	c, err := New(srv.URL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	check := func(method, path string, body string, wantStatus int, wantBody string) {
		t.Helper()
		var b []byte
		if body != "" {
			b = []byte(body)
		}
		status, out, err := c.Do(method, path, []Header{{"Authorization", "Bearer x"}}, b, nil)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		if status != wantStatus || string(out) != wantBody {
			t.Fatalf("%s %s: %d %q, want %d %q", method, path, status, out, wantStatus, wantBody)
		}
	}
	check("GET", "/empty", "", 200, "")
	check("DELETE", "/nocontent", "", 204, "")
	check("POST", "/echo", `{"a":1}`, 201, `{"a":1}`)
	check("POST", "/echo", "", 201, "")
	check("GET", "/missing", "", 404, "no such thing\n")
	var want strings.Builder
	for i := range 100000 {
		want.WriteString(strconv.Itoa(i % 10))
	}
	check("GET", "/big?n=100000", "", 200, want.String())
	// The server closes the connection after this one; the next request
	// dials again.
	check("GET", "/close", "", 200, "bye")
	check("GET", "/close", "", 200, "bye")
	check("GET", "/empty", "", 200, "")
	// Connections the server dropped while idle are replaced.
	srv.CloseClientConnections()
	check("PATCH", "/echo", "[]", 201, "[]")
}

func TestClientConcurrent(t *testing.T) {
	srv := testServer(t)
	c, _ := New(srv.URL, 4)
	defer c.Close()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := range 200 {
				body := strconv.Itoa(g*1000 + i)
				status, out, err := c.Do("POST", "/echo", nil, []byte(body), buf[:0])
				if err != nil || status != 201 || string(out) != body {
					t.Errorf("echo %s: %d %q %v", body, status, out, err)
					return
				}
				buf = out
			}
		}()
	}
	wg.Wait()
}

func TestNewRejectsHTTPS(t *testing.T) {
	if _, err := New("https://127.0.0.1:1", 1); err == nil {
		t.Fatal("https accepted")
	}
}

// FuzzReadResponse feeds arbitrary bytes to the response parser: it must
// return an answer or an error, never panic or loop.
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nrest of stream"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), 256)
		status, body, err := readResponse(br, false, nil)
		if err == nil && (status < 100 || status > 999) {
			t.Fatalf("status %d accepted", status)
		}
		if len(body) > len(data) {
			t.Fatalf("body of %d bytes from %d bytes of input", len(body), len(data))
		}
	})
}

// BenchmarkClient compares this client with net/http's against the same
// empty handler in the same run: the difference is CPU the generator no
// longer takes from the server it measures.
func BenchmarkClient(b *testing.B) {
	srv := testServer(b)
	for _, kind := range []string{"net-http", "httpload"} {
		b.Run("client="+kind, func(b *testing.B) {
			const conns = 64
			var do func() error
			switch kind {
			case "net-http":
				tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
				defer tr.CloseIdleConnections()
				cl := &http.Client{Transport: tr}
				do = func() error {
					req, _ := http.NewRequest("GET", srv.URL+"/empty", nil)
					req.Header.Set("Authorization", "Bearer x")
					resp, err := cl.Do(req)
					if err != nil {
						return err
					}
					io.Copy(io.Discard, resp.Body)
					return resp.Body.Close()
				}
			case "httpload":
				c, _ := New(srv.URL, conns)
				defer c.Close()
				h := []Header{{"Authorization", "Bearer x"}}
				do = func() error {
					_, _, err := c.Do("GET", "/empty", h, nil, nil)
					return err
				}
			}
			b.SetParallelism(conns / 2)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := do(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
		})
	}
}
