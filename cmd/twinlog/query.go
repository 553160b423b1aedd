package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func queryCommand() *cobra.Command {
	var pageSize int
	var all, raw bool
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   `query "<query text>"`,
		Short: "Query the twin graph with ADT's query language",
		Long: `Run a query (ADT's SQL dialect, plus ORDER BY, GROUP BY, DISTINCT and
arithmetic) against a server and print the rows: a table when every row is a
flat object of plain values, indented JSON otherwise. Prefix the query with
EXPLAIN to see its plan. With --all every page is fetched; otherwise the
first page is printed and the continuation is reported.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			hdr := map[string]string{}
			if pageSize > 0 {
				hdr["max-items-per-page"] = strconv.Itoa(pageSize)
			}
			var rows []json.RawMessage
			body := map[string]string{"query": args[0]}
			more := false
			for {
				b, _ := json.Marshal(body)
				var page struct {
					Value             []json.RawMessage `json:"value"`
					ContinuationToken *string           `json:"continuationToken"`
				}
				if err := c.do(cmd.Context(), "POST", "/query", b, hdr, &page); err != nil {
					return err
				}
				rows = append(rows, page.Value...)
				more = page.ContinuationToken != nil && *page.ContinuationToken != ""
				if !more || !all {
					break
				}
				body = map[string]string{"continuationToken": *page.ContinuationToken}
			}
			out := cmd.OutOrStdout()
			if raw {
				for _, r := range rows {
					fmt.Fprintln(out, string(r))
				}
			} else {
				printRows(out, rows)
			}
			if more {
				fmt.Fprintf(cmd.ErrOrStderr(), "(%d rows shown; more remain: rerun with --all)\n", len(rows))
			}
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().IntVar(&pageSize, "max-items", 0, "rows per page (max-items-per-page; default the server's, 100)")
	cmd.Flags().BoolVar(&all, "all", false, "fetch every page")
	cmd.Flags().BoolVar(&raw, "raw", false, "print each row as one line of JSON")
	return cmd
}

// printRows prints flat rows as a table and anything else as indented JSON.
func printRows(w io.Writer, rows []json.RawMessage) {
	var objs []map[string]any
	var cols []string
	flat := true
	for _, r := range rows {
		var m map[string]any
		if json.Unmarshal(r, &m) != nil {
			flat = false
			break
		}
		for k, v := range m {
			switch v.(type) {
			case map[string]any, []any:
				flat = false
			}
			if !slices.Contains(cols, k) {
				cols = append(cols, k)
			}
		}
		objs = append(objs, m)
	}
	if !flat || len(rows) == 0 {
		for _, r := range rows {
			var buf bytes.Buffer
			if json.Indent(&buf, r, "", "  ") != nil {
				buf.Reset()
				buf.Write(r)
			}
			fmt.Fprintln(w, buf.String())
		}
		if len(rows) == 0 {
			fmt.Fprintln(w, "(no rows)")
		}
		return
	}
	// Keep the server's column order as it appears in the first row.
	order := keyOrder(rows[0])
	slices.SortStableFunc(cols, func(a, b string) int { return idx(order, a) - idx(order, b) })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for _, m := range objs {
		cells := make([]string, len(cols))
		for i, c := range cols {
			if v, ok := m[c]; ok {
				b, _ := json.Marshal(v)
				cells[i] = strings.Trim(string(b), `"`)
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

func idx(order []string, k string) int {
	if i := slices.Index(order, k); i >= 0 {
		return i
	}
	return len(order)
}

// keyOrder returns the keys of a JSON object in document order.
func keyOrder(obj json.RawMessage) []string {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil {
		return nil
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return keys
		}
		k, _ := t.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return keys
		}
	}
	return keys
}
