package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spywatcher/spywatcher/host/internal/app"
	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/bus"
	"github.com/spywatcher/spywatcher/host/internal/config"
	"github.com/spywatcher/spywatcher/host/internal/plugin"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

const pluginUsage = `Usage: spywatcher plugin <command> [flags] [arguments]

Commands:
  install DIR                      install or upgrade the plugin whose plugin.json is in DIR
  list [--guild G]                 installed plugins (and their state in guild G)
  status ID --guild G              a plugin's state, grants and last error in a guild
  enable ID --guild G [--trust-process]
                                   enable in a guild (also lifts a quarantine); a
                                   process plugin is not sandboxed and needs
                                   --trust-process to acknowledge that
  disable ID --guild G             disable in a guild
  grant ID --guild G PERM... | --all [--hosts h1,h2]
                                   grant permissions the plugin asks for
  revoke ID --guild G [PERM...]    revoke permissions (all without PERM)
  config ID --guild G --set JSON | --file FILE
                                   set the plugin's configuration in a guild
  uninstall ID                     remove the plugin with its state and data

Authoring (no database needed):
  new --lang go|assemblyscript|c NAME [--dir DIR]
                                   scaffold a plugin that builds and passes its test
  test DIR --events FILE [--config JSON|FILE] [--grant PERM,...] [--http "GET /p"]
       [--tick] [--expect FILE] [--json]
                                   run a plugin in a throwaway host against events and
                                   print its hook calls, host calls, denials and outputs

The database flags of 'spywatcher serve' apply (--data-dir, --database-url, ...).
A running server picks the changes up within seconds.
`

func pluginCmd(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(env.Stdout, pluginUsage)
		if len(args) == 0 {
			return &exitError{code: 2, err: errors.New("name a plugin command")}
		}
		return nil
	}
	sub := args[0]
	switch sub {
	case "test":
		return pluginTestCmd(ctx, args[1:], env)
	case "new":
		return pluginNewCmd(args[1:], env)
	}
	var guild, set, file, hosts string
	var all, trustProcess bool
	cfg, rest, err := loadConfig("plugin "+sub, args[1:], env, func(fs *flag.FlagSet) {
		fs.StringVar(&guild, "guild", "", "guild ID")
		fs.StringVar(&set, "set", "", "configuration as a JSON object (config)")
		fs.StringVar(&file, "file", "", "configuration from a JSON file (config)")
		fs.StringVar(&hosts, "hosts", "", "comma-separated hosts to allow for http.fetch (grant)")
		fs.BoolVar(&all, "all", false, "grant everything the plugin asks for (grant)")
		fs.BoolVar(&trustProcess, "trust-process", false, "acknowledge that a process plugin runs unsandboxed (enable)")
	})
	if err != nil {
		return err
	}
	usage := func(format string, a ...any) error {
		return &exitError{code: 2, err: fmt.Errorf(format+" (see spywatcher plugin --help)", a...)}
	}
	needGuild := func() error {
		if guild == "" {
			return usage("--guild is required")
		}
		if !validID(guild) {
			return usage("--guild must be a Discord ID")
		}
		return nil
	}
	needID := func(n int) error {
		if len(rest) < n {
			return usage("name the plugin")
		}
		return nil
	}
	switch sub {
	case "install", "list", "status", "enable", "disable", "grant", "revoke", "config", "uninstall":
	default:
		return usage("unknown plugin command %q", sub)
	}
	if err := requireDatabase(cfg); err != nil {
		return err
	}
	log := app.NewLogger(cfg, env.Stderr)
	st, err := store.Open(ctx, cfg.DSN(), store.Options{Logger: log, PgBouncer: cfg.DBPgBouncer})
	if err != nil {
		return err
	}
	defer st.Close()
	enf, err := authz.New(ctx, st, authz.Options{Logger: log})
	if err != nil {
		return err
	}
	defer enf.Close()
	h, err := app.NewPluginHost(ctx, cfg, st, enf, bus.NewLocal(), nil, log)
	if err != nil {
		return err
	}
	defer h.Close(ctx)
	out := env.Stdout
	switch sub {
	case "install":
		if err := needID(1); err != nil {
			return usage("name the plugin's directory")
		}
		res, err := h.InstallDir(ctx, rest[0])
		if err != nil {
			return err
		}
		m := res.Manifest
		if res.Unchanged {
			fmt.Fprintf(out, "%s %s is already installed with this code; nothing changed\n", m.ID, m.Version)
			return nil
		}
		if res.Previous != "" {
			fmt.Fprintf(out, "upgraded %s from %s to %s\n", m.ID, res.Previous, m.Version)
		} else {
			fmt.Fprintf(out, "installed %s %s (nothing is enabled or granted yet)\n", m.ID, m.Version)
		}
		if len(res.NewPermissions) > 0 {
			fmt.Fprintf(out, "it now also asks for %s: grant them in each guild before it runs there again\n", strings.Join(res.NewPermissions, ", "))
		}
		printPermissions(out, h, m.ID)
		return nil
	case "list":
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		header := "ID\tVERSION\tHOOKS\tNAME"
		if guild != "" {
			header += "\tSTATE IN " + guild
		}
		fmt.Fprintln(tw, header)
		for _, p := range h.List() {
			line := fmt.Sprintf("%s\t%s\t%s\t%s", p.ID, p.Version, strings.Join(p.Hooks, ","), p.Name)
			if guild != "" {
				gs, err := h.Status(ctx, p.ID, guild)
				if err != nil {
					return err
				}
				line += "\t" + gs.State
			}
			fmt.Fprintln(tw, line)
		}
		return tw.Flush()
	case "uninstall":
		if err := needID(1); err != nil {
			return err
		}
		if err := h.Uninstall(ctx, rest[0]); err != nil {
			return err
		}
		fmt.Fprintf(out, "uninstalled %s and deleted its data\n", rest[0])
		return nil
	}
	if err := needID(1); err != nil {
		return err
	}
	if err := needGuild(); err != nil {
		return err
	}
	id := rest[0]
	switch sub {
	case "enable", "disable":
		err = h.SetEnabled(ctx, id, guild, sub == "enable", plugin.TrustProcess(trustProcess))
	case "grant":
		switch {
		case all && len(rest) > 1:
			return usage("give either --all or permissions")
		case all:
			err = h.GrantAll(ctx, id, guild, "cli")
		case len(rest) < 2:
			return usage("name the permissions to grant, or --all")
		default:
			var reqs []plugin.GrantRequest
			for _, p := range rest[1:] {
				r := plugin.GrantRequest{Name: p}
				if p == plugin.PermHTTPFetch && hosts != "" {
					r.Hosts = strings.Split(hosts, ",")
				}
				reqs = append(reqs, r)
			}
			err = h.Grant(ctx, id, guild, reqs, "cli")
		}
	case "revoke":
		err = h.Revoke(ctx, id, guild, rest[1:])
	case "config":
		var raw []byte
		switch {
		case set != "" && file != "":
			return usage("give either --set or --file")
		case set != "":
			raw = []byte(set)
		case file != "":
			if raw, err = os.ReadFile(file); err != nil {
				return &exitError{code: 2, err: err}
			}
		default:
			return usage("give the configuration with --set or --file")
		}
		err = h.Configure(ctx, id, guild, json.RawMessage(raw))
	}
	if err != nil {
		return err
	}
	gs, err := h.Status(ctx, id, guild)
	if err != nil {
		return err
	}
	return printStatus(out, gs)
}

func validID(s string) bool { return event.IsSnowflake(s) }

func printPermissions(w io.Writer, h *plugin.Host, id string) {
	info, err := h.Get(id)
	if err != nil || len(info.Permissions) == 0 {
		return
	}
	fmt.Fprintln(w, "\nIt asks for:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, p := range info.Permissions {
		opt := ""
		if p.Optional {
			opt = " (optional)"
		}
		hosts := ""
		if len(p.Hosts) > 0 {
			hosts = " [" + strings.Join(p.Hosts, ", ") + "]"
		}
		fmt.Fprintf(tw, "  %s%s%s\t%s risk\t%s — because: %s\n", p.Name, hosts, opt, p.Risk, p.Grants, p.Reason)
	}
	tw.Flush()
}

func printStatus(w io.Writer, gs plugin.GuildStatus) error {
	fmt.Fprintf(w, "%s in guild %s: %s\n", gs.PluginID, gs.GuildID, gs.State)
	if len(gs.Missing) > 0 {
		fmt.Fprintf(w, "  waiting for: %s\n", strings.Join(gs.Missing, ", "))
	}
	for _, g := range gs.Grants {
		hosts := ""
		if len(g.Hosts) > 0 {
			hosts = " " + strings.Join(g.Hosts, ",")
		}
		fmt.Fprintf(w, "  granted %s%s\n", g.Permission, hosts)
	}
	if string(gs.Config) != "{}" && len(gs.Config) > 0 {
		fmt.Fprintf(w, "  config %s\n", gs.Config)
	}
	if gs.QuarantineReason != "" {
		fmt.Fprintf(w, "  quarantined: %s\n", gs.QuarantineReason)
	}
	if gs.LastError != "" {
		fmt.Fprintf(w, "  last error: %s\n", gs.LastError)
	}
	return nil
}

// requireDatabase refuses to manage plugins in a SQLite database that does
// not exist yet: run from the wrong directory, the command would create an
// empty one and report that nothing is installed.
func requireDatabase(cfg *config.Config) error {
	if cfg.DatabaseURL != "" {
		return nil
	}
	if _, err := os.Stat(cfg.DSN()); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no database at %s: run this where the server keeps its data, or point at it with --data-dir (SPYWATCHER_DATA_DIR) or --database-url; `spywatcher migrate` creates a new one", cfg.DSN())
	}
	return nil
}
