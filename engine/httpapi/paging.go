package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/twinlog/twinlog/engine"
)

// Page sizes for list operations. ADT caps model lists at 100 items a page;
// the same cap serves relationship lists.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// pageSize reads the max-items-per-page header.
func pageSize(r *http.Request, def int) (int, error) {
	v := r.Header.Get("max-items-per-page")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, engine.Errorf(engine.KindInvalid, "InvalidArgument", "max-items-per-page must be a positive integer, got %q", v)
	}
	return min(n, maxPageSize), nil
}

// offsetToken encodes a list offset as an opaque continuation token.
func offsetToken(off int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(off)))
}

func parseOffsetToken(tok string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err == nil && len(b) > 2 && string(b[:2]) == "o:" {
		if n, err := strconv.Atoi(string(b[2:])); err == nil && n >= 0 {
			return n, nil
		}
	}
	return 0, engine.Errorf(engine.KindInvalid, "InvalidArgument", "the continuation token is not valid")
}

// absoluteURL returns the request's URL with query replaced, absolute, as ADT
// returns in nextLink.
func absoluteURL(r *http.Request, q url.Values) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: q.Encode()}
	return u.String()
}

type pageBody struct {
	Value    []json.RawMessage `json:"value"`
	NextLink string            `json:"nextLink,omitempty"`
}

// writePage writes items[offset:offset+size] as ADT's {value, nextLink},
// where the offset comes from the request's continuationToken.
func writePage(w http.ResponseWriter, r *http.Request, items []json.RawMessage, defSize int) error {
	size, err := pageSize(r, defSize)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	off := 0
	if tok := q.Get("continuationToken"); tok != "" {
		if off, err = parseOffsetToken(tok); err != nil {
			return err
		}
	}
	off = min(off, len(items))
	end := min(off+size, len(items))
	body := pageBody{Value: items[off:end]}
	if body.Value == nil {
		body.Value = []json.RawMessage{}
	}
	if end < len(items) {
		q.Set("continuationToken", offsetToken(end))
		body.NextLink = absoluteURL(r, q)
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}
