package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/projections/telemetry"
)

// RegisterTelemetry serves the telemetry history that f keeps:
//
//   - GET /telemetry?twin=&model=&field=&from=&to=&bucket=&agg=: per twin
//     and field, the aggregates of each bucket of [from, to). twin, model
//     and field repeat (or take comma-separated lists) and default to
//     every one; from and to are RFC 3339 times or durations relative to
//     now ("-24h"), defaulting to the last 24 hours; bucket is a duration
//     ("15m", "1h"), default one bucket for the range; agg is a list of
//     count, min, max, avg, sum and last, default avg.
//   - GET /telemetry/export?model=&format=parquet|arrow&from=&to=: one
//     model's history streamed as a Parquet file (the default) or an Arrow
//     IPC stream; model= (empty) exports twins of unknown model.
//   - GET /telemetry/models: the models with telemetry.
//
// Reads see every write acknowledged before them. While the history is
// rebuilt from the log at start they answer 503.
func (s *Server) RegisterTelemetry(f *telemetry.Follower) {
	t := &telemetryAPI{f: f, log: s.log}
	s.Handle("GET /telemetry", t.query)
	s.Handle("GET /telemetry/export", t.export)
	s.Handle("GET /telemetry/models", t.models)
}

type telemetryAPI struct {
	f   *telemetry.Follower
	log *slog.Logger
}

func badParam(format string, args ...any) error {
	return engine.Errorf(engine.KindInvalid, "InvalidArgument", format, args...)
}

// checkParams rejects parameters other than allowed (and api-version), so
// that a misspelt filter fails instead of selecting everything.
func checkParams(q url.Values, allowed ...string) error {
	for k := range q {
		if k != "api-version" && !slices.Contains(allowed, k) {
			return badParam("unknown parameter %q; use %s", k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// list returns the values of a repeated, comma-separated parameter.
func list(q url.Values, key string) []string {
	var out []string
	for _, v := range q[key] {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// timeParam reads an RFC 3339 time or a duration relative to now.
func timeParam(q url.Values, key string, now, def time.Time) (time.Time, error) {
	v := strings.TrimSpace(q.Get(key))
	if v == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(d), nil
	}
	return time.Time{}, badParam("%s %q is neither an RFC 3339 time (2026-11-24T09:26:00Z) nor a duration from now (-24h)", key, v)
}

// sync waits until the history holds every acknowledged write.
func (t *telemetryAPI) sync(r *http.Request) error {
	if err := t.f.Ready(); err != nil {
		return err
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	return t.f.Sync(ctx)
}

func (t *telemetryAPI) query(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkParams(q, "twin", "model", "field", "from", "to", "bucket", "agg"); err != nil {
		return err
	}
	now := time.Now()
	to, err := timeParam(q, "to", now, now)
	if err != nil {
		return err
	}
	from, err := timeParam(q, "from", now, to.Add(-24*time.Hour))
	if err != nil {
		return err
	}
	if from.Year() < 1678 || to.Year() > 2261 {
		return badParam("from and to must lie between the years 1678 and 2261")
	}
	if !from.Before(to) {
		return badParam("from (%s) must be before to (%s)", from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	}
	req := telemetry.Query{Twins: list(q, "twin"), Models: list(q, "model"), Fields: list(q, "field"), From: from, To: to}
	if v := q.Get("bucket"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return badParam("bucket %q is not a positive duration (such as 15m or 1h)", v)
		}
		req.Bucket = d
	}
	for _, a := range list(q, "agg") {
		switch ag := telemetry.Agg(strings.ToLower(a)); ag {
		case telemetry.Count, telemetry.Min, telemetry.Max, telemetry.Avg, telemetry.Sum, telemetry.Last:
			req.Aggs = append(req.Aggs, ag)
		default:
			return badParam("agg %q is not an aggregate; use count, min, max, avg, sum or last", a)
		}
	}
	if err := t.sync(r); err != nil {
		return err
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	res, err := t.f.Store().Run(ctx, req)
	if err != nil {
		return err
	}
	if res.Series == nil {
		res.Series = []telemetry.Series{}
	}
	w.Header().Set("twinlog-position", strconv.FormatUint(t.f.Position(), 10))
	writeJSON(w, http.StatusOK, struct {
		From   time.Time `json:"from"`
		To     time.Time `json:"to"`
		Bucket string    `json:"bucket,omitempty"`
		*telemetry.Result
	}{from.UTC(), to.UTC(), bucketString(req.Bucket), res})
	return nil
}

func bucketString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// Media types of the exports.
const (
	parquetType = "application/vnd.apache.parquet"
	arrowType   = "application/vnd.apache.arrow.stream"
)

func (t *telemetryAPI) export(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := checkParams(q, "model", "format", "from", "to"); err != nil {
		return err
	}
	if !q.Has("model") {
		return badParam("model is required: the DTMI of the model whose telemetry to export (GET /telemetry/models lists them)")
	}
	x := telemetry.Export{Model: q.Get("model")}
	now := time.Now()
	for _, p := range []struct {
		key string
		dst *int64
	}{{"from", &x.From}, {"to", &x.To}} {
		if q.Get(p.key) == "" {
			continue
		}
		tm, err := timeParam(q, p.key, now, time.Time{})
		if err != nil {
			return err
		}
		*p.dst = tm.UnixNano()
	}
	if x.From != 0 && x.To != 0 && x.From >= x.To {
		return badParam("from must be before to")
	}
	format := strings.ToLower(q.Get("format"))
	var ctype, ext string
	switch format {
	case "", "parquet":
		ctype, ext = parquetType, "parquet"
	case "arrow", "ipc", "arrows":
		ctype, ext = arrowType, "arrows"
	default:
		return badParam("format %q is not supported; use parquet or arrow", format)
	}
	if err := t.sync(r); err != nil {
		return err
	}
	name := "telemetry"
	if x.Model != "" {
		name = strings.NewReplacer(":", "_", ";", "_", "/", "_").Replace(x.Model)
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", `attachment; filename="`+name+"."+ext+`"`)
	h.Set("twinlog-position", strconv.FormatUint(t.f.Position(), 10))
	cw := &countWriter{w: w}
	var err error
	if ext == "parquet" {
		_, err = t.f.Store().WriteParquet(r.Context(), cw, x)
	} else {
		_, err = t.f.Store().WriteIPC(r.Context(), cw, x)
	}
	if err != nil && cw.n > 0 {
		// The status is sent: the client sees a truncated file (no
		// Parquet footer, no end of stream), which its reader rejects.
		t.log.Warn("telemetry export cut short", "model", x.Model, "format", ext, "bytes", cw.n, "err", err)
		return nil
	}
	return err
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (t *telemetryAPI) models(w http.ResponseWriter, r *http.Request) error {
	if err := checkParams(r.URL.Query()); err != nil {
		return err
	}
	if err := t.sync(r); err != nil {
		return err
	}
	s := t.f.Store()
	writeJSON(w, http.StatusOK, struct {
		Value    []string `json:"value"`
		Points   uint64   `json:"points"`
		Position uint64   `json:"position"`
	}{s.Models(), s.Points(), t.f.Position()})
	return nil
}
