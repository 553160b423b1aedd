package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/twinlog/twinlog/engine/bulk"
	"github.com/twinlog/twinlog/schemas/dtdl"
)

func importCommand() *cobra.Command {
	var workers int
	var modelPaths []string
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "import <file>",
		Short: "Import models, twins and relationships from an ADT import file",
		Long: `Import an ADT Import Jobs NDJSON file or an ADT Explorer graph JSON file into a
server: models first (those already present are skipped), then twins, then
relationships, each through the ordinary API so each is validated. Progress is
shown on long imports; every rejected object is reported with its line and
why, and the command exits non-zero if any was rejected.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			fh, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer fh.Close()
			f, err := bulk.Decode(fh)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if len(modelPaths) > 0 {
				extra, err := modelItems(modelPaths)
				if err != nil {
					return err
				}
				f.Items = append(extra, f.Items...)
			}
			rep := importFile(cmd.Context(), c, f, workers, cmd.ErrOrStderr())
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d/%d models, %d/%d twins, %d/%d relationships in %s\n",
				rep.ok[bulk.Model], f.Count(bulk.Model), rep.ok[bulk.Twin], f.Count(bulk.Twin),
				rep.ok[bulk.Relationship], f.Count(bulk.Relationship), rep.took.Round(time.Millisecond))
			for _, r := range rep.rejected {
				fmt.Fprintln(cmd.OutOrStdout(), r)
			}
			if len(rep.rejected) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d object(s) rejected", len(rep.rejected))}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&workers, "workers", 16, "concurrent requests")
	cmd.Flags().StringSliceVar(&modelPaths, "models", nil, "DTDL files or directories to upload before the file's own models")
	cf.register(cmd)
	return cmd
}

type importReport struct {
	ok       map[bulk.Kind]int
	rejected []string
	took     time.Duration
}

func importFile(ctx context.Context, c *apiClient, f *bulk.File, workers int, progress io.Writer) importReport {
	start := time.Now()
	rep := importReport{ok: map[bulk.Kind]int{}}
	var models []bulk.Item
	for _, it := range f.Items {
		if it.Kind == bulk.Model {
			models = append(models, it)
		}
	}
	if len(models) > 0 {
		n, rejected := importModels(ctx, c, models)
		rep.ok[bulk.Model] = n
		rep.rejected = append(rep.rejected, rejected...)
	}
	for _, kind := range []bulk.Kind{bulk.Twin, bulk.Relationship} {
		var items []bulk.Item
		for _, it := range f.Items {
			if it.Kind == kind {
				items = append(items, it)
			}
		}
		n, rejected := importObjects(ctx, c, kind, items, workers, progress)
		rep.ok[kind] = n
		rep.rejected = append(rep.rejected, rejected...)
	}
	rep.took = time.Since(start)
	return rep
}

// importModels uploads the models not yet on the server as one atomic batch.
func importModels(ctx context.Context, c *apiClient, models []bulk.Item) (int, []string) {
	var docs []json.RawMessage
	present := 0
	for _, m := range models {
		err := c.do(ctx, "GET", "/models/"+escapePath(m.ID), nil, nil, nil)
		var ae *apiError
		switch {
		case err == nil:
			present++
		case errors.As(err, &ae) && ae.Status == 404:
			docs = append(docs, m.Data)
		default:
			return 0, []string{fmt.Sprintf("models: %v", err)}
		}
	}
	if len(docs) == 0 {
		return present, nil
	}
	body, _ := json.Marshal(docs)
	if err := c.do(ctx, "POST", "/models", body, nil, nil); err != nil {
		return present, []string{fmt.Sprintf("models (%d, uploaded as one batch, none added): %v", len(docs), err)}
	}
	return present + len(docs), nil
}

func importObjects(ctx context.Context, c *apiClient, kind bulk.Kind, items []bulk.Item, workers int, progress io.Writer) (int, []string) {
	if len(items) == 0 {
		return 0, nil
	}
	workers = max(1, workers)
	var next, done, okN atomic.Int64
	var mu sync.Mutex
	rejected := map[int]string{}
	stop := make(chan struct{})
	var pw sync.WaitGroup
	if len(items) >= 5000 {
		pw.Add(1)
		go func() {
			defer pw.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			start := time.Now()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					d := done.Load()
					fmt.Fprintf(progress, "%ss: %d/%d (%.0f/s)\n", kind, d, len(items), float64(d)/time.Since(start).Seconds())
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(items) {
					return
				}
				it := items[i]
				var path string
				if kind == bulk.Twin {
					path = "/digitaltwins/" + escapePath(it.ID)
				} else {
					path = "/digitaltwins/" + escapePath(it.Source) + "/relationships/" + escapePath(it.ID)
				}
				err := c.do(ctx, "PUT", path, it.Data, nil, nil)
				done.Add(1)
				if err != nil {
					mu.Lock()
					rejected[i] = fmt.Sprintf("line %d: %s %s: %v", it.Line, kind, it.ID, err)
					mu.Unlock()
					continue
				}
				okN.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	pw.Wait()
	out := make([]string, 0, len(rejected))
	for i := range items {
		if r, ok := rejected[i]; ok {
			out = append(out, r)
		}
	}
	return int(okN.Load()), out
}

// modelItems reads DTDL files (a document may hold one interface or an
// array of them) as model items.
func modelItems(paths []string) ([]bulk.Item, error) {
	docs, err := dtdl.LoadDocuments(paths)
	if err != nil {
		return nil, err
	}
	var items []bulk.Item
	for _, d := range docs {
		data := bytes.TrimPrefix(d.Data, []byte("\xef\xbb\xbf"))
		var many []json.RawMessage
		if err := json.Unmarshal(data, &many); err != nil {
			var one json.RawMessage
			if err := json.Unmarshal(data, &one); err != nil {
				return nil, fmt.Errorf("%s: %w", d.Name, err)
			}
			many = []json.RawMessage{one}
		}
		for i, m := range many {
			var id struct {
				ID string `json:"@id"`
			}
			json.Unmarshal(m, &id)
			items = append(items, bulk.Item{Kind: bulk.Model, Line: i + 1, ID: id.ID, Data: m})
		}
	}
	return items, nil
}
