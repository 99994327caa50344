package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/app"
	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/privacy"
	"github.com/spywatcher/spywatcher/host/internal/store"
)

const guildUsage = `Usage: spywatcher guild <command> [flags] GUILD

Commands:
  settings GUILD                    what the guild collects and keeps
  settings GUILD [--track LIST] [--retain LIST] [--timezone TZ] [--delete-on-leave true|false]
                                    change them: --track presence,messages,typing,voice,members
                                    (or none) replaces what is collected; --retain
                                    events=30,presence=90,messages=90,scores=90,plugin_data=90,aggregates=0
                                    sets windows in days (0 keeps)
  remove GUILD [--cancel]           delete all the guild's data after --guild-removal-grace
                                    (nothing is collected meanwhile); --cancel calls it off

The database flags of 'spywatcher serve' apply. A running server applies a
change at once when it shares Redis with this command, else within seconds.
`

const privacyUsage = `Usage: spywatcher privacy <command> [flags] [USER]

Commands:
  export USER [--guild G] [--out FILE]   everything held about a person, as JSON
  delete USER [--guild G] [--opt-out] [--reason TEXT]
                                         delete a person's data in the core and every plugin
                                         (every guild without --guild); --opt-out also stops
                                         collecting about them
  opt-out USER [--guild G]               stop collecting about a person (every guild without --guild)
  opt-in USER [--guild G]                lift an opt-out
  opt-outs [--guild G]                   list opt-outs
  requests [--guild G]                   list recorded export and deletion requests
  purge                                  run retention now (expired rows, removed guilds past the grace period)

The database flags of 'spywatcher serve' apply.
`

func guildCmd(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(env.Stdout, guildUsage)
		if len(args) == 0 {
			return &exitError{code: 2, err: errors.New("name a guild command")}
		}
		return nil
	}
	sub := args[0]
	var track, retain, tz, delOnLeave string
	var cancel bool
	cfg, rest, err := loadConfig("guild "+sub, args[1:], env, func(fs *flag.FlagSet) {
		fs.StringVar(&track, "track", "", "what to collect: presence,messages,typing,voice,members or none (settings)")
		fs.StringVar(&retain, "retain", "", "retention windows in days: events=30,presence=90,... (settings)")
		fs.StringVar(&tz, "timezone", "", "the guild's IANA time zone (settings)")
		fs.StringVar(&delOnLeave, "delete-on-leave", "", "true: delete a member's data when they leave (settings)")
		fs.BoolVar(&cancel, "cancel", false, "call off a scheduled removal (remove)")
	})
	if err != nil {
		return err
	}
	usage := func(format string, a ...any) error {
		return &exitError{code: 2, err: fmt.Errorf(format+" (see spywatcher guild --help)", a...)}
	}
	if sub != "settings" && sub != "remove" {
		return usage("unknown guild command %q", sub)
	}
	if len(rest) != 1 || !validID(rest[0]) {
		return usage("name one guild by its Discord ID")
	}
	gid := rest[0]
	a, err := app.New(ctx, cfg, app.NewLogger(cfg, env.Stderr), env.Stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	switch sub {
	case "remove":
		due, err := a.Privacy.RequestGuildRemoval(ctx, gid, "cli", cancel)
		if err != nil {
			return err
		}
		if cancel {
			fmt.Fprintf(env.Stdout, "removal of guild %s called off\n", gid)
		} else {
			fmt.Fprintf(env.Stdout, "guild %s: nothing is collected from now on; all its data is deleted after %s (at the first retention run after that)\n",
				gid, due.UTC().Format(time.RFC3339))
		}
		return nil
	}
	g, err := a.Store.GetGuildSettings(ctx, gid)
	if err != nil {
		return err
	}
	changed := false
	if track != "" {
		changed = true
		g.Tracking = store.Tracking{}
		for _, k := range strings.Split(track, ",") {
			switch strings.TrimSpace(k) {
			case "presence":
				g.Tracking.Presence = true
			case "messages":
				g.Tracking.Messages = true
			case "typing":
				g.Tracking.Typing = true
			case "voice":
				g.Tracking.Voice = true
			case "members":
				g.Tracking.Members = true
			case "none", "":
			default:
				return usage("--track: unknown kind %q", k)
			}
		}
	}
	if retain != "" {
		changed = true
		for _, kv := range strings.Split(retain, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 3650 {
				return usage("--retain: %q needs a number of days between 0 and 3650", kv)
			}
			dst := map[string]*int{"events": &g.Retention.EventsDays, "presence": &g.Retention.PresenceDays, "messages": &g.Retention.MessagesDays,
				"scores": &g.Retention.ScoresDays, "plugin_data": &g.Retention.PluginDataDays, "aggregates": &g.Retention.AggregatesDays}[k]
			if dst == nil {
				return usage("--retain: unknown window %q", k)
			}
			*dst = n
		}
	}
	if tz != "" {
		if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
			return usage("--timezone: unknown time zone %q", tz)
		}
		changed, g.Timezone = true, tz
	}
	if delOnLeave != "" {
		b, err := strconv.ParseBool(delOnLeave)
		if err != nil {
			return usage("--delete-on-leave takes true or false")
		}
		changed, g.DeleteOnLeave = true, b
	}
	if changed {
		g.UpdatedBy = "cli"
		if err := a.Privacy.SaveSettings(ctx, g); err != nil {
			return err
		}
		if g, err = a.Store.GetGuildSettings(ctx, gid); err != nil {
			return err
		}
	}
	return printJSON(env.Stdout, g)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func privacyCmd(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(env.Stdout, privacyUsage)
		if len(args) == 0 {
			return &exitError{code: 2, err: errors.New("name a privacy command")}
		}
		return nil
	}
	sub := args[0]
	var guild, out, reason string
	var optOut bool
	cfg, rest, err := loadConfig("privacy "+sub, args[1:], env, func(fs *flag.FlagSet) {
		fs.StringVar(&guild, "guild", "", "limit to one guild (default: every guild)")
		fs.StringVar(&out, "out", "-", "file to write the export to (export)")
		fs.StringVar(&reason, "reason", "", "recorded with the request (delete)")
		fs.BoolVar(&optOut, "opt-out", false, "also stop collecting about the person (delete)")
	})
	if err != nil {
		return err
	}
	usage := func(format string, a ...any) error {
		return &exitError{code: 2, err: fmt.Errorf(format+" (see spywatcher privacy --help)", a...)}
	}
	if guild != "" && !validID(guild) {
		return usage("--guild must be a Discord ID")
	}
	needUser := func() (string, error) {
		if len(rest) != 1 || !validID(rest[0]) {
			return "", usage("name one person by their Discord user ID")
		}
		return rest[0], nil
	}
	switch sub {
	case "export", "delete", "opt-out", "opt-in", "opt-outs", "requests", "purge":
	default:
		return usage("unknown privacy command %q", sub)
	}
	a, err := app.New(ctx, cfg, app.NewLogger(cfg, env.Stderr), env.Stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	switch sub {
	case "export":
		uid, err := needUser()
		if err != nil {
			return err
		}
		ex, err := a.Privacy.Export(ctx, guild, uid, "cli")
		if err != nil {
			return err
		}
		if out == "-" {
			return printJSON(env.Stdout, ex)
		}
		f, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		if err := printJSON(f, ex); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case "delete":
		uid, err := needUser()
		if err != nil {
			return err
		}
		req, err := a.Privacy.DeleteUser(ctx, privacy.DeleteRequest{UserID: uid, GuildID: guild, By: "cli", Reason: reason, OptOut: optOut})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "request %s: %s\n", req.ID, req.Status)
		return printJSON(env.Stdout, req.Detail)
	case "opt-out", "opt-in":
		uid, err := needUser()
		if err != nil {
			return err
		}
		if sub == "opt-out" {
			err = a.Privacy.AddOptOut(ctx, store.OptOut{UserID: uid, GuildID: guild, CreatedBy: "cli"})
		} else {
			err = a.Privacy.RemoveOptOut(ctx, uid, guild)
		}
		if err != nil {
			return err
		}
		where := "every guild"
		if guild != "" {
			where = "guild " + guild
		}
		fmt.Fprintf(env.Stdout, "%s: %s in %s\n", uid, map[bool]string{true: "not tracked", false: "tracked again"}[sub == "opt-out"], where)
		return nil
	case "opt-outs":
		l, err := a.Store.ListOptOuts(ctx, guild)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USER\tGUILD\tSINCE\tBY")
		for _, o := range l {
			g := o.GuildID
			if g == "" {
				g = "(all)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", o.UserID, g, o.CreatedAt.Format(time.RFC3339), o.CreatedBy)
		}
		return tw.Flush()
	case "requests":
		l, err := a.Store.ListPrivacyRequests(ctx, guild, 100)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKIND\tUSER\tGUILD\tSTATUS\tBY\tAT")
		for _, r := range l {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Kind, r.UserID, r.GuildID, r.Status, r.RequestedBy, r.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	case "purge":
		rep, err := a.Privacy.Purge(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "retention: %v rows deleted, guilds deleted: %v, in %s\n", rep.Rows, rep.GuildsPurged, rep.Took.Round(time.Millisecond))
		return nil
	}
	return nil
}

const keysUsage = `Usage: spywatcher keys rotate

Re-seals everything encrypted at rest (plugin key-value data, access token
signing keys) under the current --secret-key. To rotate: set the new secret
as --secret-key, put the old one in --old-secret-keys, restart the servers
(both keys now open values; new values use the new key), run this command,
then drop the old secret from --old-secret-keys. Also encrypts plugin values
stored before any secret key was configured.
`

func keysCmd(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || args[0] != "rotate" {
		fmt.Fprint(env.Stdout, keysUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return &exitError{code: 2, err: errors.New("the only keys command is rotate")}
	}
	cfg, rest, err := loadConfig("keys rotate", args[1:], env)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected arguments %q", rest)}
	}
	if cfg.SecretKey == "" {
		return &exitError{code: 2, err: errors.New("set --secret-key (SPYWATCHER_SECRET_KEY) to the new key first")}
	}
	a, err := app.New(ctx, cfg, app.NewLogger(cfg, env.Stderr), env.Stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	res, err := a.Store.ResealPluginData(ctx, 500)
	if err != nil {
		return err
	}
	sk, skFailed, err := auth.ResealSigningKeys(ctx, a.Store, a.Seal)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "current key %s: %d plugin values and %d signing keys re-sealed\n", a.Seal.Current(), res.Resealed, sk)
	if res.Failed+skFailed > 0 {
		return fmt.Errorf("%d plugin values and %d signing keys are sealed by a key that is not configured; add it to --old-secret-keys and run again", res.Failed, skFailed)
	}
	fmt.Fprintln(env.Stdout, "nothing needs the old keys any more: they can be removed from --old-secret-keys")
	return nil
}
