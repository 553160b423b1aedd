package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/twinlog/twinlog/schemas/dtdl"
)

func modelsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "Work with DTDL models",
	}
	cmd.AddCommand(modelsValidateCommand())
	return cmd
}

func modelsValidateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate <file or dir>...",
		Short: "Validate DTDL files offline, as one batch",
		Long: `Validate DTDL v2/v3 files (directories are walked for *.json) as one batch,
with no server. Prints every problem with its file, DTMI and code, and exits
non-zero when there is any.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			diags, err := dtdl.ValidateFiles(args)
			if err != nil {
				return err
			}
			for _, d := range diags {
				fmt.Fprintln(cmd.OutOrStdout(), d.String())
			}
			if len(diags) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d problem(s) found", len(diags))}
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ok: no problems found")
			return nil
		},
	}
}
