package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/twinlog/twinlog/engine"
)

// errorStatus maps a domain error kind to its HTTP status.
var errorStatus = map[engine.Kind]int{
	engine.KindInternal:     http.StatusInternalServerError,
	engine.KindInvalid:      http.StatusBadRequest,
	engine.KindUnauthorized: http.StatusUnauthorized,
	engine.KindForbidden:    http.StatusForbidden,
	engine.KindNotFound:     http.StatusNotFound,
	engine.KindMethod:       http.StatusMethodNotAllowed,
	engine.KindConflict:     http.StatusConflict,
	engine.KindPrecondition: http.StatusPreconditionFailed,
	engine.KindTooLarge:     http.StatusRequestEntityTooLarge,
	engine.KindUnsupported:  http.StatusUnsupportedMediaType,
	engine.KindThrottled:    http.StatusTooManyRequests,
	engine.KindUnavailable:  http.StatusServiceUnavailable,
	engine.KindTimeout:      http.StatusRequestTimeout,
}

type errorDetail struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Details []errorDetail `json:"details,omitempty"`
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

func detailOf(e *engine.Error) errorDetail {
	d := errorDetail{Code: e.Code, Message: e.Message}
	for i := range e.Details {
		d.Details = append(d.Details, detailOf(&e.Details[i]))
	}
	return d
}

// writeError writes err in ADT's error shape. Internal errors are logged with
// their cause and shown to the client without it.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := engine.AsError(err)
	status, ok := errorStatus[e.Kind]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if e.Kind == engine.KindThrottled {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("x-ms-error-code", e.Code)
	writeJSON(w, status, errorBody{Error: detailOf(e)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		slog.Error("encode response", "err", err)
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"InternalServerError","message":"encode response"}}`)
	}
	writeRaw(w, status, b)
}

// contentTypeJSON is the Content-Type of every JSON answer, shared: the
// server only reads header values, and its length equals its capacity, so
// an append copies it.
var contentTypeJSON = []string{"application/json; charset=utf-8"}

// writeRaw writes a JSON answer with its length, so that a large one goes
// out as is rather than in chunks.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body)
}
