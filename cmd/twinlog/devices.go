package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func devicesCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "Register devices and invoke commands on them",
		Long: `Register the devices that connect over MQTT (username: the device id,
password: the key printed once by "add" and "regenerate-key"), and invoke DTDL
commands on the devices mirrored by twins.`,
	}
	cf.register(cmd)
	cmd.AddCommand(devicesAddCommand(&cf), devicesListCommand(&cf),
		devicesJSONCommand(&cf, "get", "Show a device", "GET", ""),
		devicesJSONCommand(&cf, "regenerate-key", "Replace a device's key and print the new one", "POST", "/regenerateKey"),
		devicesJSONCommand(&cf, "delete", "Remove a device (its twin stays)", "DELETE", ""),
		devicesInvokeCommand(&cf))
	return cmd
}

func printJSON(cmd *cobra.Command, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
	return err
}

func devicesAddCommand(cf *clientFlags) *cobra.Command {
	var twin, model string
	cmd := &cobra.Command{
		Use:   "add <device-id>",
		Short: "Register a device (or update its twin and model) and print its key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]string{"twinId": twin, "modelId": model})
			var out map[string]any
			if err := c.do(cmd.Context(), "PUT", "/devices/"+escapePath(args[0]), body, nil, &out); err != nil {
				return err
			}
			return printJSON(cmd, out)
		},
	}
	cmd.Flags().StringVar(&twin, "twin", "", "id of the twin mirroring the device (default the device id)")
	cmd.Flags().StringVar(&model, "model", "", "create the twin now with this model (default: when the device announces its model)")
	return cmd
}

func devicesListCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List devices",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var out struct {
				Value []struct {
					DeviceID, TwinID, ModelID string
					Provisioned               bool
				} `json:"value"`
			}
			if err := c.do(cmd.Context(), "GET", "/devices", nil, nil, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DEVICE\tTWIN\tMODEL\tPROVISIONED")
			for _, d := range out.Value {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", d.DeviceID, d.TwinID, d.ModelID, d.Provisioned)
			}
			return tw.Flush()
		},
	}
}

func devicesJSONCommand(cf *clientFlags, use, short, method, suffix string) *cobra.Command {
	return &cobra.Command{
		Use:   use + " <device-id>",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.do(cmd.Context(), method, "/devices/"+escapePath(args[0])+suffix, nil, nil, &out); err != nil {
				return err
			}
			if out == nil {
				return nil
			}
			return printJSON(cmd, out)
		},
	}
}

func devicesInvokeCommand(cf *clientFlags) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "invoke <twin-id> <command> [request-json]",
		Short: "Invoke a DTDL command on the device mirrored by a twin and print its response",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var body []byte
			if len(args) == 3 {
				if !json.Valid([]byte(args[2])) {
					return fmt.Errorf("request %q is not JSON", args[2])
				}
				body = []byte(args[2])
			}
			path := "/digitaltwins/" + escapePath(args[0]) + "/commands/" + escapePath(args[1])
			if timeout > 0 {
				path += fmt.Sprintf("?responseTimeoutInSeconds=%d", timeout)
			}
			var out map[string]any
			if err := c.do(cmd.Context(), "POST", path, body, nil, &out); err != nil {
				return err
			}
			return printJSON(cmd, out)
		},
	}
	cmd.Flags().IntVar(&timeout, "timeout", 0, "seconds to wait for the device's response (default the server's, 30)")
	return cmd
}
