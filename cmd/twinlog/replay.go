package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/twinlog/twinlog/engine/node"
)

func replayCommand() *cobra.Command {
	var dataDir string
	var verify bool
	var maxDiffs int
	cmd := &cobra.Command{
		Use:   "replay --verify [--data <dir>]",
		Short: "Replay the log from its start and check that every projection rebuilds to the live state",
		Long: `With --verify, replay the log of a data directory from position 0 into new
projections (twin graph and models, grants, API keys) and check them against
what a node opening the directory restores (the newest snapshot plus the log
after it), and every snapshot and history checkpoint against the replay at
its position. Projections are deterministic, so any difference is a bug or a
damaged file; the first differences are listed and the exit code is 1.

The directory must not be served while it is verified (stop the node, or
verify a copy). Progress (events/s) is written to standard error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !verify {
				return errors.New("give --verify (the only replay of the main log; simulations replay into branches: POST /simulations)")
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
