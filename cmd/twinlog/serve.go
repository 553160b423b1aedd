package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/twinlog/twinlog/engine/authn"
	"github.com/twinlog/twinlog/engine/authz"
	"github.com/twinlog/twinlog/engine/node"
)

// defaultDataDir is where `twinlog serve` keeps its data when --data is
// omitted: $TWINLOG_DATA, else $XDG_DATA_HOME/twinlog, else
// ~/.local/share/twinlog.
func defaultDataDir() string {
	if d := os.Getenv("TWINLOG_DATA"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "twinlog")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "twinlog")
	}
	return "twinlog-data"
}

func serveCommand() *cobra.Command {
	var cfg node.Config
	var logLevel, anonymousRole string
	var jwtIssuer, jwtJWKS, jwtSecretFile, jwtGroups string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a twinlog node",
		Long: `Run a twinlog node on a data directory, serving the Azure Digital Twins
data-plane API. Stops cleanly on SIGINT or SIGTERM.

The admin bearer token is $TWINLOG_TOKEN when set; otherwise one is generated
at first start into <data>/admin-token and printed once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			cfg.Out = cmd.OutOrStdout()
			if cfg.Token == "" {
				cfg.Token = os.Getenv("TWINLOG_TOKEN")
			}
			switch r := authz.Role(anonymousRole); {
			case anonymousRole == "none":
			case slices.Contains(authz.Roles, r):
				cfg.AnonymousRole = r
			default:
				return fmt.Errorf("--anonymous-role %q: want none or one of %v", anonymousRole, authz.Roles)
			}
			if jwtIssuer != "" {
				is, err := jwtIssuerFlags(jwtIssuer, jwtJWKS, jwtSecretFile, jwtGroups)
				if err != nil {
					return err
				}
				cfg.JWTIssuers = append(cfg.JWTIssuers, is)
			}
			if cfg.CompactCheck <= 0 {
				cfg.CompactCheck = -1
			}
			ctx := cmd.Context()
			n, err := node.Open(ctx, cfg)
			if err != nil {
				return err
			}
			cfg.Logger.Info("twinlog serving", "url", n.URL(), "data", cfg.DataDir, "version", versionString())
			err = n.Serve(ctx)
			cfg.Logger.Info("twinlog stopped")
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", defaultDataDir(), "data directory (default $TWINLOG_DATA or ~/.local/share/twinlog)")
	f.StringVar(&cfg.Listen, "listen", node.DefaultListen, "address to serve on")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate (PEM); serve HTTPS")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "TLS private key (PEM)")
	f.BoolVar(&cfg.SelfSigned, "tls-self-signed", false, "serve HTTPS with a development certificate generated into <data>/tls")
	f.BoolVar(&cfg.NetHTTP, "net-http", false, "serve with Go's net/http server instead of twinlog's HTTP/1.1 server (same API; for comparison)")
	f.BoolVar(&cfg.AllowAnonymous, "allow-anonymous", false, "serve requests without a bearer token (development only)")
	f.StringVar(&anonymousRole, "anonymous-role", "owner", "with --allow-anonymous: the role anonymous callers hold on the whole instance, or none (then only what is granted to the principal anonymous)")
	f.StringVar(&cfg.MQTTListen, "mqtt-listen", "", "serve the embedded MQTT broker for devices on this address, such as :1883 (default off)")
	f.StringVar(&cfg.MQTTBroker, "mqtt-broker", "", "subscribe to device topics on an external MQTT broker, such as tcp://127.0.0.1:1883 (default off)")
	f.StringVar(&cfg.MQTTClientID, "mqtt-client-id", "", "twinlog's client id at --mqtt-broker; a stable one keeps device messages queued while twinlog is down (default random)")
	f.StringVar(&cfg.MQTTUsername, "mqtt-username", "", "twinlog's username at --mqtt-broker")
	f.StringVar(&cfg.MQTTPassword, "mqtt-password", "", "twinlog's password at --mqtt-broker")
	f.StringVar(&jwtIssuer, "jwt-issuer", "", "accept bearer JWTs from this issuer (the exact iss claim); callers get the roles granted with 'twinlog grants'")
	f.StringVar(&jwtJWKS, "jwt-jwks", "", "with --jwt-issuer: the issuer's RS256/ES256 keys, a JWKS file or an https:// URL")
	f.StringVar(&jwtSecretFile, "jwt-hs256-secret-file", "", "with --jwt-issuer: a file holding an HS256 secret of at least 32 bytes (development only)")
	f.StringVar(&jwtGroups, "jwt-groups-claim", "groups", "with --jwt-issuer: the claim listing the caller's groups")
	f.StringVar(&cfg.JWTAudience, "jwt-audience", "", "the aud claim JWTs must carry (required with --jwt-issuer)")
	f.DurationVar(&cfg.JWTClockSkew, "jwt-clock-skew", time.Minute, "leeway for JWT exp, nbf and iat")
	f.DurationVar(&cfg.CompactCheck, "compact-check", 30*time.Second, "how often to check whether the heap is fragmented enough to rebuild the twin graph in memory; 0 or less: never")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

// jwtIssuerFlags builds the issuer given by the serve flags.
func jwtIssuerFlags(iss, jwks, secretFile, groups string) (*authn.Issuer, error) {
	is := &authn.Issuer{Issuer: iss, GroupsClaim: groups}
	switch {
	case strings.HasPrefix(jwks, "https://"), strings.HasPrefix(jwks, "http://"):
		is.JWKSURL = jwks
	case jwks != "":
		is.JWKSFile = jwks
	}
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return nil, fmt.Errorf("--jwt-hs256-secret-file: %w", err)
		}
		is.HS256Secret = bytes.TrimSpace(b)
	}
	return is, nil
}
