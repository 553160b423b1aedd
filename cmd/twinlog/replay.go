package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/twinlog/twinlog/engine/node"
)

func replayCommand() *cobra.Command {
	var dataDir string
	var verify bool
	var maxDiffs int
	var br branchFlags
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "replay (--verify [--data <dir>] | --branch [--at <t>] [--from <t>] [--to <t>] [--speed <n>] [--handler <name[@version]>]...)",
		Short: "Verify the log's projections, or replay recorded telemetry into a simulation branch",
		Long: `With --branch, ask a server to fork a simulation branch at --at (a time or
log position; default now), replay the telemetry recorded between --from
(default the fork) and --to (default now) into it at --speed (0: as fast as
possible; N: N× the recorded pace), with the deployed handlers
(--deployed-handlers), versions of them (--handler name@version) or a module
of your own (--handler-wasm with --handler-manifest), and follow its
progress until it is done (unless --no-wait). The branch is then read with
?branch=<id> and compared with GET /simulations/<id>/diff.

With --verify, replay the log of a data directory from position 0 into new
projections (twin graph and models, grants, API keys) and check them against
what a node opening the directory restores (the newest snapshot plus the log
after it), and every snapshot and history checkpoint against the replay at
its position. Projections are deterministic, so any difference is a bug or a
damaged file; the first differences are listed and the exit code is 1.

The directory must not be served while it is verified (stop the node, or
verify a copy). Progress (events/s) is written to standard error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if verify == br.branch {
				return errors.New("give one of --verify (check a data directory) or --branch (replay into a simulation branch on a server)")
			}
			if br.branch {
				return br.run(cmd, cf)
			}
			errw := cmd.ErrOrStderr()
			rep, err := node.Verify(cmd.Context(), dataDir, node.VerifyOptions{
				MaxDifferences: maxDiffs,
				Progress: func(p node.VerifyProgress) {
					fmt.Fprintf(errw, "replayed %d/%d events (%.0f events/s)\n", p.Applied, p.Head, p.Rate())
				},
			})
			if err != nil {
				return err
			}
			printVerify(cmd.OutOrStdout(), rep)
			if c, ok := rep.First(); ok {
				return &exitError{code: 1, err: fmt.Errorf("%s differs from its replay at position %d (%s): %s", c.Against, c.Position, c.Projection, c.Differences[0])}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", defaultDataDir(), "data directory (default $TWINLOG_DATA or ~/.local/share/twinlog)")
	f.BoolVar(&verify, "verify", false, "rebuild every projection from position 0 and compare it with the live state")
	f.IntVar(&maxDiffs, "max-differences", 10, "differences listed per comparison")
	br.register(cmd)
	cf.register(cmd)
	return cmd
}

func printVerify(w io.Writer, rep *node.VerifyReport) {
	rate := float64(rep.Head) / max(rep.Took.Seconds(), 1e-9)
	fmt.Fprintf(w, "replayed %d events in %s (%.0f events/s); a node restores from the snapshot at %d\n",
		rep.Head, rep.Took.Round(time.Millisecond), rate, rep.Restored)
	for _, c := range rep.Comparisons {
		if len(c.Differences) == 0 {
			fmt.Fprintf(w, "ok       %-10s at %d = %s\n", c.Projection, c.Position, c.Against)
			continue
		}
		fmt.Fprintf(w, "DIFFERS  %-10s at %d: %s\n", c.Projection, c.Position, c.Against)
		for _, d := range c.Differences {
			fmt.Fprintf(w, "         %s\n", d)
		}
		if c.More {
			fmt.Fprintf(w, "         (more differences)\n")
		}
	}
}

// branchFlags are the flags of `twinlog replay --branch`.
type branchFlags struct {
	branch, deployed, noWait bool
	at, from, to             string
	speed                    float64
	handlers                 []string
	wasm, manifest           string
}

func (b *branchFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&b.branch, "branch", false, "replay recorded telemetry into a new simulation branch on a server")
	f.StringVar(&b.at, "at", "", "with --branch: fork point, an RFC 3339 time or a log position (default now)")
	f.StringVar(&b.from, "from", "", "with --branch: start of the window replayed (default the fork point)")
	f.StringVar(&b.to, "to", "", "with --branch: end of the window replayed (default now)")
	f.Float64Var(&b.speed, "speed", 0, "with --branch: 0 as fast as possible, N for N× the recorded pace")
	f.BoolVar(&b.deployed, "deployed-handlers", false, "with --branch: run the handlers deployed on the server in the branch")
	f.StringArrayVar(&b.handlers, "handler", nil, "with --branch: run this deployed handler, name or name@version (repeatable)")
	f.StringVar(&b.wasm, "handler-wasm", "", "with --branch: run this WebAssembly module in the branch (with --handler-manifest)")
	f.StringVar(&b.manifest, "handler-manifest", "", "with --handler-wasm: its manifest, a JSON file")
	f.BoolVar(&b.noWait, "no-wait", false, "with --branch: print the branch's id and return without following it")
}

type branchStatus struct {
	ID       string `json:"id"`
	Fork     uint64 `json:"fork"`
	Position uint64 `json:"position"`
	Fed      uint64 `json:"eventsFed"`
	Time     string `json:"time"`
	Done     bool   `json:"done"`
	Error    string `json:"error"`
}

func (b *branchFlags) run(cmd *cobra.Command, cf *clientFlags) error {
	type handler struct {
		Name     string          `json:"name,omitempty"`
		Version  string          `json:"version,omitempty"`
		Manifest json.RawMessage `json:"manifest,omitempty"`
		Module   []byte          `json:"module,omitempty"`
	}
	req := struct {
		At               string            `json:"at,omitempty"`
		Window           map[string]string `json:"window"`
		Speed            float64           `json:"speed"`
		DeployedHandlers bool              `json:"deployedHandlers,omitempty"`
		Handlers         []handler         `json:"handlers,omitempty"`
	}{At: b.at, Window: map[string]string{}, Speed: b.speed, DeployedHandlers: b.deployed}
	if b.from != "" {
		req.Window["from"] = b.from
	}
	if b.to != "" {
		req.Window["to"] = b.to
	}
	for _, h := range b.handlers {
		name, version, _ := strings.Cut(h, "@")
		req.Handlers = append(req.Handlers, handler{Name: name, Version: version})
	}
	if (b.wasm == "") != (b.manifest == "") {
		return errors.New("--handler-wasm and --handler-manifest go together")
	}
	if b.wasm != "" {
		mod, err := os.ReadFile(b.wasm)
		if err != nil {
			return err
		}
		man, err := os.ReadFile(b.manifest)
		if err != nil {
			return err
		}
		if !json.Valid(man) {
			return fmt.Errorf("--handler-manifest %s is not JSON", b.manifest)
		}
		req.Handlers = append(req.Handlers, handler{Manifest: man, Module: mod})
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	var created struct {
		ID       string `json:"id"`
		Position uint64 `json:"position"`
	}
	if err := c.do(ctx, "POST", "/simulations", body, nil, &created); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "branch %s forked, at position %d\n", created.ID, created.Position)
	if b.noWait {
		return nil
	}
	start, last := time.Now(), uint64(0)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		var st branchStatus
		if err := c.do(ctx, "GET", "/simulations/"+escapePath(created.ID), nil, nil, &st); err != nil {
			return err
		}
		if st.Done || st.Fed != last {
			fmt.Fprintf(cmd.ErrOrStderr(), "branch %s: %d events fed (%.0f events/s), position %d, time %s\n",
				st.ID, st.Fed, float64(st.Fed)/time.Since(start).Seconds(), st.Position, st.Time)
			last = st.Fed
		}
		if st.Done {
			if st.Error != "" {
				return fmt.Errorf("branch %s failed: %s", st.ID, st.Error)
			}
			fmt.Fprintf(out, "branch %s done: %d events fed, position %d; read it with ?branch=%s, diff it at /simulations/%s/diff\n",
				st.ID, st.Fed, st.Position, st.ID, st.ID)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
