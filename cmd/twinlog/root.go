package main

import (
	"errors"
	"io"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func rootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "twinlog",
		Short:         "An event-sourced digital-twins engine, compatible with Azure Digital Twins",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		serveCommand(),
		importCommand(),
		queryCommand(),
		handlersCommand(),
		devicesCommand(),
		grantsCommand(),
		versionCommand(),
		modelsCommand(),
		exportCommand(),
		telemetryCommand(),
		replayCommand(),
	)
	return root
}
