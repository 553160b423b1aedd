package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
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
	next := ""
	if end < len(items) {
		q.Set("continuationToken", offsetToken(end))
		next = absoluteURL(r, q)
	}
	writeRaw(w, http.StatusOK, appendList(nil, items[off:end], "nextLink", next, false))
	return nil
}

// appendList appends {"value":[rows...],"<key>":"<val>"} to dst. The rows
// are JSON the server encoded itself, copied as they are rather than
// re-validated as json.Marshal would. An empty val omits the key, or writes
// null when nullWhenEmpty is set (ADT's query answers carry
// "continuationToken": null on the last page).
func appendList(dst []byte, rows []json.RawMessage, key, val string, nullWhenEmpty bool) []byte {
	n := len(dst) + 32 + len(key) + len(val)
	for _, r := range rows {
		n += len(r) + 1
	}
	dst = slices.Grow(dst, n-len(dst))
	dst = append(dst, `{"value":[`...)
	for i, r := range rows {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, r...)
	}
	dst = append(dst, ']')
	switch {
	case val != "":
		v, _ := json.Marshal(val)
		dst = append(dst, `,"`...)
		dst = append(dst, key...)
		dst = append(dst, `":`...)
		dst = append(dst, v...)
	case nullWhenEmpty:
		dst = append(dst, `,"`...)
		dst = append(dst, key...)
		dst = append(dst, `":null`...)
	}
	return append(dst, '}')
}
