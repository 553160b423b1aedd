package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// grantsCommand manages access grants (/grants) and API keys (/apikeys).
func grantsCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "grants",
		Short: "Grant roles on twins to users, groups and API keys",
		Long: `Grant a role (owner, writer, reader, telemetry-sender, handler-admin,
route-admin) to a principal (user:<subject>, group:<group claim>,
apikey:<key id>) on a scope: the instance, the twins of a model (and of
models extending it), a subtree of the graph, or explicit twins. Grants are
events in the log; revoking one appends another. "grants keys" creates,
lists and revokes API keys.`,
	}
	cf.register(cmd)
	cmd.AddCommand(grantsListCommand(&cf), grantsAddCommand(&cf), grantsRevokeCommand(&cf), grantsKeysCommand(&cf))
	return cmd
}

type grantJSON struct {
	ID        string `json:"id,omitempty"`
	Principal string `json:"principal"`
	Role      string `json:"role"`
	Scope     struct {
		Kind          string   `json:"kind"`
		Model         string   `json:"model,omitempty"`
		Root          string   `json:"root,omitempty"`
		Relationships []string `json:"relationships,omitempty"`
		Twins         []string `json:"twins,omitempty"`
	} `json:"scope"`
	CreatedBy string `json:"createdBy,omitempty"`
}

func (g *grantJSON) scopeText() string {
	s := &g.Scope
	switch s.Kind {
	case "model":
		return "model " + s.Model
	case "subtree":
		if len(s.Relationships) == 0 {
			return "subtree " + s.Root
		}
		return "subtree " + s.Root + " via " + strings.Join(s.Relationships, ",")
	case "twins":
		return "twins " + strings.Join(s.Twins, ",")
	}
	return s.Kind
}

func grantsListCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List grants",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var out struct {
				Value []grantJSON `json:"value"`
			}
			if err := c.do(cmd.Context(), "GET", "/grants?max-items-per-page=1000", nil, nil, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPRINCIPAL\tROLE\tSCOPE\tBY")
			for _, g := range out.Value {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", g.ID, g.Principal, g.Role, g.scopeText(), g.CreatedBy)
			}
			return tw.Flush()
		},
	}
}

func grantsAddCommand(cf *clientFlags) *cobra.Command {
	var g grantJSON
	var model, subtree, rels, twins string
	cmd := &cobra.Command{
		Use:   "add <principal> <role>",
		Short: "Grant a role; the scope is the instance unless --model, --subtree or --twins is given",
		Example: `  twinlog grants add user:alice reader --subtree building-1 --via contains,hasSensor
  twinlog grants add group:facility writer --model dtmi:example:Room;1
  twinlog grants add apikey:3f2a... telemetry-sender --twins sensor-1,sensor-2`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.Principal, g.Role = args[0], args[1]
			n := 0
			g.Scope.Kind = "instance"
			if model != "" {
				g.Scope.Kind, g.Scope.Model = "model", model
				n++
			}
			if subtree != "" {
				g.Scope.Kind, g.Scope.Root = "subtree", subtree
				if rels != "" {
					g.Scope.Relationships = strings.Split(rels, ",")
				}
				n++
			}
			if twins != "" {
				g.Scope.Kind, g.Scope.Twins = "twins", strings.Split(twins, ",")
				n++
			}
			if n > 1 {
				return fmt.Errorf("give at most one of --model, --subtree and --twins")
			}
			if rels != "" && subtree == "" {
				return fmt.Errorf("--via needs --subtree")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			body, _ := json.Marshal(g)
			var out map[string]any
			if err := c.do(cmd.Context(), "POST", "/grants", body, nil, &out); err != nil {
				return err
			}
			return printJSON(cmd, out)
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "scope: the twins of this model and of the models extending it")
	cmd.Flags().StringVar(&subtree, "subtree", "", "scope: this twin and the twins reachable from it")
	cmd.Flags().StringVar(&rels, "via", "", "with --subtree: the relationship names followed, comma-separated (default all)")
	cmd.Flags().StringVar(&twins, "twins", "", "scope: these twin ids, comma-separated")
	return cmd
}

func grantsRevokeCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke <grant-id>",
		Short: "Revoke a grant",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			return c.do(cmd.Context(), "DELETE", "/grants/"+escapePath(args[0]), nil, nil, nil)
		},
	}
}

func grantsKeysCommand(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys (for services and devices)",
	}
	create := &cobra.Command{
		Use:   "create <name>",
		Short: "Create an API key and print it (shown only this once; the server keeps its hash)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]string{"name": args[0]})
			var out map[string]any
			if err := c.do(cmd.Context(), "POST", "/apikeys", body, nil, &out); err != nil {
				return err
			}
			return printJSON(cmd, out)
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List API keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var out struct {
				Value []struct {
					ID, Name, CreatedBy string
					Created             int64
					Revoked             bool
				} `json:"value"`
			}
			if err := c.do(cmd.Context(), "GET", "/apikeys?max-items-per-page=1000", nil, nil, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tCREATED\tBY\tREVOKED")
			for _, k := range out.Value {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", k.ID, k.Name, time.Unix(0, k.Created).UTC().Format(time.RFC3339), k.CreatedBy, k.Revoked)
			}
			return tw.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke <key-id>",
		Short: "Revoke an API key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			return c.do(cmd.Context(), "DELETE", "/apikeys/"+escapePath(args[0]), nil, nil, nil)
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
