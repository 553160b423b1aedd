package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func handlersCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "handlers",
		Short: "Deploy and inspect WebAssembly handlers",
	}
	cf.register(cmd)
	cmd.AddCommand(handlersDeployCommand(&cf), handlersListCommand(&cf), handlersGetCommand(&cf),
		handlersSimpleCommand(&cf, "disable", "Stop a handler from handling new events", "POST", "/disable"),
		handlersSimpleCommand(&cf, "delete", "Delete a handler", "DELETE", ""))
	return cmd
}

// parseAccess reads a handler grant: "<role>" (on the instance) or
// "<role>@<scope>" with the scope as grantJSON.scopeText writes it.
func parseAccess(s string) (map[string]any, error) {
	role, scope, _ := strings.Cut(s, "@")
	sc := map[string]any{"kind": "instance"}
	if scope = strings.TrimSpace(scope); scope != "" && scope != "instance" {
		kind, arg, _ := strings.Cut(scope, " ")
		arg = strings.TrimSpace(arg)
		if arg == "" {
			return nil, fmt.Errorf("grant %q: the scope %q needs an argument ('model <id>', 'subtree <root> [via <rel>,...]' or 'twins <id>,...')", s, kind)
		}
		sc["kind"] = kind
		switch kind {
		case "model":
			sc["model"] = arg
		case "subtree":
			root, via, ok := strings.Cut(arg, " via ")
			sc["root"] = strings.TrimSpace(root)
			if ok {
				sc["relationships"] = strings.Split(strings.TrimSpace(via), ",")
			}
		case "twins":
			sc["twins"] = strings.Split(arg, ",")
		default:
			return nil, fmt.Errorf("grant %q: unknown scope %q (want instance, model, subtree or twins)", s, kind)
		}
	}
	return map[string]any{"role": strings.TrimSpace(role), "scope": sc}, nil
}

// parseTrigger reads "events=telemetry,twin.patched;models=dtmi:a;1;properties=comfort;relationships=contains".
// Model ids contain ';', so fields are split on ";<key>=" only.
func parseTrigger(s string) (map[string][]string, error) {
	t := map[string][]string{}
	keys := []string{"events", "models", "properties", "relationships"}
	rest := s
	for rest != "" {
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			return nil, fmt.Errorf("trigger %q: want key=value[;key=value...]", s)
		}
		json := map[string]string{"events": "events", "models": "models", "properties": "properties", "relationships": "relationships"}[k]
		if json == "" {
			return nil, fmt.Errorf("trigger %q: unknown key %q (want one of %s)", s, k, strings.Join(keys, ", "))
		}
		next := len(v)
		for _, k2 := range keys {
			if i := strings.Index(v, ";"+k2+"="); i >= 0 && i < next {
				next = i
			}
		}
		t[json] = append(t[json], strings.Split(v[:next], ",")...)
		rest = strings.TrimPrefix(v[next:], ";")
	}
	if len(t["events"]) == 0 {
		t["events"] = []string{"telemetry"}
	}
	return t, nil
}

func handlersDeployCommand(cf *clientFlags) *cobra.Command {
	var name, version, manifestFile, config string
	var triggers, grants []string
	var timeoutMs int
	var memoryPages uint32
	cmd := &cobra.Command{
		Use:   "deploy <file.wasm>",
		Short: "Deploy a handler module (or roll an existing one to a new version)",
		Long: `Deploy a WebAssembly handler built with the twinlog handler SDK:

  twinlog handlers deploy comfort.wasm --name comfort \
    --trigger 'events=telemetry;models=dtmi:example:Sensor;1'

Each --trigger is key=value pairs separated by ';': events (telemetry,
twin.created, twin.patched, ..., or the groups property, lifecycle,
relationship), models, properties, relationships; values are
comma-separated. --manifest reads a whole manifest from a JSON file instead.

The handler acts as the principal handler:<name> and may read and write
only what its grants allow. Each --grant is a role, on the instance or on
the scope after '@', written as 'twinlog grants list' shows scopes:

  --grant writer
  --grant 'writer@model dtmi:example:Room;1'
  --grant 'reader@subtree building-1 via contains'
  --grant 'writer@twins room-1,room-2'

Giving a role needs that role on the whole instance (or the owner role).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			module, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			man := map[string]any{}
			if manifestFile != "" {
				b, err := os.ReadFile(manifestFile)
				if err != nil {
					return err
				}
				if err := json.Unmarshal(b, &man); err != nil {
					return fmt.Errorf("--manifest: %w", err)
				}
			}
			if name != "" {
				man["name"] = name
			}
			if version != "" {
				man["version"] = version
			}
			if len(triggers) > 0 {
				var ts []any
				for _, s := range triggers {
					t, err := parseTrigger(s)
					if err != nil {
						return err
					}
					ts = append(ts, t)
				}
				man["triggers"] = ts
			}
			if len(grants) > 0 {
				var gs []any
				for _, s := range grants {
					g, err := parseAccess(s)
					if err != nil {
						return err
					}
					gs = append(gs, g)
				}
				man["grants"] = gs
			}
			if config != "" {
				man["config"] = json.RawMessage(config)
			}
			if timeoutMs > 0 || memoryPages > 0 {
				man["limits"] = map[string]any{"timeoutMs": timeoutMs, "memoryPages": memoryPages}
			}
			body, err := json.Marshal(map[string]any{"manifest": man, "module": base64.StdEncoding.EncodeToString(module)})
			if err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			var st map[string]any
			if err := c.do(cmd.Context(), "POST", "/handlers", body, nil, &st); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deployed %v version %v at position %v\n", st["name"], st["version"], st["position"])
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "handler name")
	f.StringVar(&version, "version", "", "version label (default: the deployment's log position)")
	f.StringArrayVar(&triggers, "trigger", nil, "trigger, e.g. 'events=telemetry;models=dtmi:x:Sensor;1' (repeatable)")
	f.StringArrayVar(&grants, "grant", nil, "grant of the handler, e.g. 'writer@model dtmi:x:Room;1' (repeatable)")
	f.StringVar(&manifestFile, "manifest", "", "manifest JSON file (flags override its fields)")
	f.StringVar(&config, "config", "", "handler config JSON object")
	f.IntVar(&timeoutMs, "timeout-ms", 0, "CPU-time budget per invocation in ms (default 1000)")
	f.Uint32Var(&memoryPages, "memory-pages", 0, "memory limit in 64 KiB pages (default 1024)")
	return cmd
}

func handlersListCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List handlers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var out struct {
				Value []struct {
					Name, Version, State string
					Cursor               uint64
					Stats                struct {
						Events, Failures, DeadLetters, Outputs uint64
						LatencyP99us                           float64
					}
				} `json:"value"`
			}
			if err := c.do(cmd.Context(), "GET", "/handlers", nil, nil, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tSTATE\tCURSOR\tEVENTS\tOUTPUTS\tFAILURES\tDEAD\tP99(us)")
			for _, h := range out.Value {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.0f\n", h.Name, h.Version, h.State, h.Cursor,
					h.Stats.Events, h.Stats.Outputs, h.Stats.Failures, h.Stats.DeadLetters, h.Stats.LatencyP99us)
			}
			return tw.Flush()
		},
	}
}

func handlersGetCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get <name>",
		Short: "Show a handler's status, failures and dead letters as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var st json.RawMessage
			if err := c.do(cmd.Context(), "GET", "/handlers/"+escapePath(args[0]), nil, nil, &st); err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(st)
		},
	}
}

func handlersSimpleCommand(cf *clientFlags, verb, short, method, suffix string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " <name>",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			return c.do(context.WithoutCancel(cmd.Context()), method, "/handlers/"+escapePath(args[0])+suffix, nil, nil, nil)
		},
	}
}
