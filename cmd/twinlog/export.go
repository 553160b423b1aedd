package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func exportCommand() *cobra.Command {
	var parquetPath, arrowPath, model, from, to string
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "export (--parquet <file> | --arrow <file>) --model <dtmi> [--from <time>] [--to <time>]",
		Short: "Export a model's telemetry history as Parquet or an Arrow IPC stream",
		Long: `Download the telemetry history of one model's twins (columns twin, time and
one float64 column per telemetry field) from a server, as a Parquet file or
an Arrow IPC stream, for analytics tools. --from and --to are RFC 3339 times
or durations from now (-24h); whole time partitions are written, so rows
may lie slightly outside them. "-" writes to standard output. A file is
written in full or not at all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (parquetPath == "") == (arrowPath == "") {
				return errors.New("give one of --parquet <file> or --arrow <file>")
			}
			if !cmd.Flags().Changed("model") {
				return errors.New("--model is required (the DTMI whose telemetry to export)")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			q := url.Values{"model": {model}, "format": {"parquet"}}
			path := parquetPath
			if arrowPath != "" {
				q.Set("format", "arrow")
				path = arrowPath
			}
			if from != "" {
				q.Set("from", from)
			}
			if to != "" {
				q.Set("to", to)
			}
			var n int64
			if path == "-" {
				n, err = c.download(cmd.Context(), "/telemetry/export?"+q.Encode(), cmd.OutOrStdout())
				return err
			}
			n, err = downloadFile(cmd.Context(), c, "/telemetry/export?"+q.Encode(), path)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d bytes)\n", path, n)
			return nil
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&parquetPath, "parquet", "", "write a Parquet file")
	f.StringVar(&arrowPath, "arrow", "", "write an Arrow IPC stream")
	f.StringVar(&model, "model", "", `the model's DTMI ("" for twins of unknown model)`)
	f.StringVar(&from, "from", "", "first partition's time (RFC 3339 or -24h; default the oldest)")
	f.StringVar(&to, "to", "", "end time (RFC 3339 or -1h; default the newest)")
	return cmd
}

// downloadFile writes the answer to path through a temporary file renamed
// into place once complete.
func downloadFile(ctx context.Context, c *apiClient, path, dst string) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	n, err := c.download(ctx, path, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	return n, os.Rename(tmp.Name(), dst)
}

// download streams the body of a GET to w. Errors in ADT's shape become
// *apiError.
func (c *apiClient) download(ctx context.Context, path string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return 0, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// An export may take longer than the client's default timeout.
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			return 0, &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
		}
		return 0, &apiError{Status: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("download: %w", err)
	}
	return n, nil
}

func telemetryCommand() *cobra.Command {
	var twins, models, fields, aggs []string
	var from, to, bucket string
	var raw bool
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "telemetry [--twin <id>]... [--model <dtmi>] [--field <name>] [--from <time>] [--to <time>] [--bucket 1h] [--agg avg,max]",
		Short: "Query the telemetry history: aggregates per twin, field and time bucket",
		Long: `Query a server's telemetry history (GET /telemetry) and print one row per
twin, field and bucket with the aggregates asked for (count, min, max,
avg, sum, last; default avg). Twins, models and fields default to all of
them; --from and --to are RFC 3339 times or durations from now, default
the last 24 hours; --bucket (15m, 1h) downsamples, default one bucket for
the range.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string][]string{"twin": twins, "model": models, "field": fields, "agg": aggs} {
				if len(v) > 0 {
					q[k] = v
				}
			}
			for k, v := range map[string]string{"from": from, "to": to, "bucket": bucket} {
				if v != "" {
					q.Set(k, v)
				}
			}
			var res struct {
				Series []struct {
					Twin    string                       `json:"twin"`
					Field   string                       `json:"field"`
					Buckets []map[string]json.RawMessage `json:"buckets"`
				} `json:"series"`
			}
			var body json.RawMessage
			if err := c.do(cmd.Context(), "GET", "/telemetry?"+q.Encode(), nil, nil, &body); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if raw {
				fmt.Fprintln(out, string(body))
				return nil
			}
			if err := json.Unmarshal(body, &res); err != nil {
				return err
			}
			cols := []string{"count", "min", "max", "avg", "sum", "last"}
			shown := map[string]bool{}
			for _, s := range res.Series {
				for _, b := range s.Buckets {
					for _, c := range cols {
						if _, ok := b[c]; ok {
							shown[c] = true
						}
					}
				}
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			hdr := []string{"twin", "field", "start"}
			for _, c := range cols {
				if shown[c] {
					hdr = append(hdr, c)
				}
			}
			fmt.Fprintln(tw, strings.Join(hdr, "\t"))
			rows := 0
			for _, s := range res.Series {
				for _, b := range s.Buckets {
					var start string
					json.Unmarshal(b["start"], &start)
					cells := []string{s.Twin, s.Field, start}
					for _, c := range cols {
						if shown[c] {
							cells = append(cells, number(b[c]))
						}
					}
					fmt.Fprintln(tw, strings.Join(cells, "\t"))
					rows++
				}
			}
			tw.Flush()
			if rows == 0 {
				fmt.Fprintln(out, "(no points)")
			}
			return nil
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringArrayVar(&twins, "twin", nil, "a twin id (repeat for several; default every twin)")
	f.StringArrayVar(&models, "model", nil, "a model's DTMI (repeat for several; default every model)")
	f.StringArrayVar(&fields, "field", nil, "a telemetry field (repeat for several; default every field)")
	f.StringSliceVar(&aggs, "agg", nil, "aggregates: count, min, max, avg, sum, last (default avg)")
	f.StringVar(&from, "from", "", "start (RFC 3339 or a duration from now such as -24h; default 24 h before --to)")
	f.StringVar(&to, "to", "", "end, exclusive (RFC 3339 or a duration from now; default now)")
	f.StringVar(&bucket, "bucket", "", "bucket width such as 15m or 1h (default one bucket for the range)")
	f.BoolVar(&raw, "raw", false, "print the server's JSON answer")
	return cmd
}

// number formats a JSON number compactly.
func number(raw json.RawMessage) string {
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return string(raw)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
