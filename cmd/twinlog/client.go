package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// clientFlags are the flags every client subcommand takes.
type clientFlags struct {
	server string
	token  string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.server, "server", "", "server URL (default $TWINLOG_SERVER or http://127.0.0.1:9721)")
	cmd.PersistentFlags().StringVar(&f.token, "token", "", "bearer token (default $TWINLOG_TOKEN)")
}

// apiClient calls a twinlog server's REST API. It trusts the system's
// certificates, so SSL_CERT_FILE works for a self-signed one.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func (f *clientFlags) client() (*apiClient, error) {
	base := f.server
	if base == "" {
		base = os.Getenv("TWINLOG_SERVER")
	}
	if base == "" {
		base = "http://127.0.0.1:9721"
	}
	if _, err := url.Parse(base); err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	tok := f.token
	if tok == "" {
		tok = os.Getenv("TWINLOG_TOKEN")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &apiClient{base: strings.TrimRight(base, "/"), token: tok, http: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}, nil
}

// apiError is an error answered by the server, in ADT's shape.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// do sends a request with a JSON body (nil for none) and decodes a JSON
// answer into out (nil to discard). Errors in ADT's shape become *apiError.
func (c *apiClient) do(ctx context.Context, method, path string, body []byte, hdr map[string]string, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	u := c.base + path
	if !strings.Contains(path, "api-version=") {
		if strings.Contains(path, "?") {
			u += "&api-version=2023-10-31"
		} else {
			u += "?api-version=2023-10-31"
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			return &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
		}
		return &apiError{Status: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}

func escapePath(s string) string { return url.PathEscape(s) }
