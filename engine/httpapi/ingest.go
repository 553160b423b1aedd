package httpapi

import (
	"net/http"
	"strings"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/processors/ingest"
)

// RegisterIngest serves POST /ingest: a batch of telemetry points as a JSON
// array or NDJSON, optionally gzipped (Content-Encoding: gzip).
//
// The answer is 200 with {"accepted", "rejected": [{"index", "code",
// "message"}], "position"} once the accepted points are durable; 400 with
// the same report and an "error" when no point was accepted; 400 for a body
// that is not JSON or not gzip; 413 for a batch over the limits; 429 with
// Retry-After when ingestion is at capacity (nothing was appended).
func (s *Server) RegisterIngest(in *ingest.Ingester) {
	s.Handle("POST /ingest", func(w http.ResponseWriter, r *http.Request) error {
		gz := false
		switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
		case "", "identity":
		case "gzip", "x-gzip":
			gz = true
		default:
			return engine.Errorf(engine.KindUnsupported, "UnsupportedMediaType", "Content-Encoding %q is not supported; use gzip or none", enc)
		}
		ctx, cancel := requestContext(r)
		defer cancel()
		rep, err := in.IngestReader(s.ingestContext(r, ctx), actor(r), r.Body, gz)
		if err != nil {
			return err
		}
		if rep.Accepted == 0 {
			writeJSON(w, http.StatusBadRequest, ingestFailure{Report: rep,
				Error: errorDetail{Code: "ValidationFailed", Message: "no point of the batch was accepted"}})
			return nil
		}
		writeJSON(w, http.StatusOK, rep)
		return nil
	})
}

type ingestFailure struct {
	*ingest.Report
	Error errorDetail `json:"error"`
}
