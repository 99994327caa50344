package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/spywatcher/spywatcher/host/internal/api"
	"github.com/spywatcher/spywatcher/host/internal/app"
	"github.com/spywatcher/spywatcher/host/internal/auth"
	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/config"
	"github.com/spywatcher/spywatcher/host/internal/store"
	"github.com/spywatcher/spywatcher/sdk/go/event"
)

// openApp builds the host without serving, for commands that change
// accounts, roles and keys. A running host sees the change at once when
// both use Redis, otherwise within 2 s (it polls the rules' version).
func openApp(ctx context.Context, name string, args []string, env Env, extra ...func(*flag.FlagSet)) (*app.App, []string, error) {
	a, _, rest, err := openAppConfig(ctx, name, args, env, extra...)
	return a, rest, err
}

func openAppConfig(ctx context.Context, name string, args []string, env Env, extra ...func(*flag.FlagSet)) (*app.App, *config.Config, []string, error) {
	cfg, rest, err := loadConfig(name, args, env, extra...)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg.LogLevel = slog.LevelError // quiet: these commands talk on stdout
	a, err := app.New(ctx, cfg, app.NewLogger(cfg, env.Stderr), env.Stdout)
	if err != nil {
		return nil, nil, nil, err
	}
	return a, cfg, rest, nil
}

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func userCmd(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		return usageErr("user create | list | role | passwd (see spywatcher user create --help)")
	}
	switch args[0] {
	case "create":
		return userCreate(ctx, args[1:], env)
	case "list":
		return userList(ctx, args[1:], env)
	case "role":
		return userRole(ctx, args[1:], env)
	case "passwd":
		return userPasswd(ctx, args[1:], env)
	}
	return usageErr("unknown user command %q: create, list, role or passwd", args[0])
}

// readPassword asks on a terminal (twice, without echo) or reads the first
// line of standard input.
func readPassword(env Env) (string, error) {
	if f, ok := env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(env.Stderr, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(env.Stderr, "Again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", errors.New("the passwords differ")
		}
		return string(p1), nil
	}
	if env.Stdin == nil {
		return "", errors.New("no password: give it on standard input")
	}
	line, err := bufio.NewReader(io.LimitReader(env.Stdin, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func userCreate(ctx context.Context, args []string, env Env) error {
	var username, display string
	var admin bool
	a, rest, err := openApp(ctx, "user create", args, env, func(fs *flag.FlagSet) {
		fs.StringVar(&username, "username", "", "login name (or give it as the argument)")
		fs.StringVar(&display, "display-name", "", "name shown in the dashboard")
		fs.BoolVar(&admin, "admin", false, "make the account an instance admin")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	if username == "" && len(rest) == 1 {
		username, rest = rest[0], nil
	}
	if username == "" || len(rest) > 0 {
		return usageErr("usage: spywatcher user create [--admin] [--display-name NAME] USERNAME  (password on stdin or asked)")
	}
	if !api.ValidUsername(username) {
		return usageErr("username %q: 2 to 64 letters, digits, dots, dashes or underscores, not starting with discord-", username)
	}
	pw, err := readPassword(env)
	if err != nil {
		return err
	}
	hash, err := auth.DefaultArgon2.Hash(pw)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	acc, err := api.CreateUser(ctx, a.Store, a.Authz, store.Account{ID: auth.NewAccountID(), Username: username, DisplayName: display, PasswordHash: hash}, admin)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("username %s is taken", username)
	}
	if err != nil {
		return err
	}
	if err := a.Store.AddAudit(ctx, store.AuditEntry{Actor: "cli", Action: "user.create", Target: authz.User(acc.ID), Result: "ok",
		Detail: "username=" + username + fmt.Sprintf(" instance_admin=%v", admin)}); err != nil {
		return err
	}
	role := ""
	if admin {
		role = " (instance admin)"
	}
	fmt.Fprintf(env.Stdout, "created user %s%s, id %s\n", username, role, acc.ID)
	return nil
}

func userList(ctx context.Context, args []string, env Env) error {
	a, _, err := openApp(ctx, "user list", args, env)
	if err != nil {
		return err
	}
	defer a.Close()
	accs, err := a.Store.ListAccounts(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSERNAME\tDISCORD\tDISABLED\tROLES")
	for _, acc := range accs {
		roles, err := a.Authz.Roles(authz.User(acc.ID))
		if err != nil {
			return err
		}
		var rs []string
		for dom, r := range roles {
			rs = append(rs, r+"@"+dom)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", acc.ID, acc.Username, acc.DiscordID, acc.Disabled, strings.Join(rs, " "))
	}
	return tw.Flush()
}

func userRole(ctx context.Context, args []string, env Env) error {
	a, rest, err := openApp(ctx, "user role", args, env)
	if err != nil {
		return err
	}
	defer a.Close()
	if len(rest) != 3 {
		return usageErr("usage: spywatcher user role USERNAME GUILD|* ROLE  (ROLE: viewer, moderator, admin, owner, instance_admin or none)")
	}
	acc, err := a.Store.AccountByUsername(ctx, rest[0])
	if err != nil {
		return fmt.Errorf("user %s: %w", rest[0], err)
	}
	dom, role := rest[1], rest[2]
	if dom != authz.AnyDomain && !event.IsSnowflake(dom) {
		return usageErr("guild must be a Discord ID or *")
	}
	if role == "none" {
		role = ""
	}
	if err := a.Authz.SetRole(ctx, authz.User(acc.ID), dom, role); err != nil {
		return &exitError{code: 2, err: err}
	}
	if err := a.Store.AddAudit(ctx, store.AuditEntry{Actor: "cli", Action: "role.assign", Target: authz.User(acc.ID), GuildID: strings.Trim(dom, "*"), Result: "ok", Detail: "role=" + rest[2]}); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s is now %s in %s\n", acc.Username, rest[2], dom)
	return nil
}

func userPasswd(ctx context.Context, args []string, env Env) error {
	a, rest, err := openApp(ctx, "user passwd", args, env)
	if err != nil {
		return err
	}
	defer a.Close()
	if len(rest) != 1 {
		return usageErr("usage: spywatcher user passwd USERNAME  (new password on stdin or asked)")
	}
	acc, err := a.Store.AccountByUsername(ctx, rest[0])
	if err != nil {
		return fmt.Errorf("user %s: %w", rest[0], err)
	}
	pw, err := readPassword(env)
	if err != nil {
		return err
	}
	hash, err := auth.DefaultArgon2.Hash(pw)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if err := a.Store.UpdateAccount(ctx, acc.ID, store.AccountUpdate{PasswordHash: &hash}); err != nil {
		return err
	}
	if err := a.Store.RevokeAccountSessions(ctx, acc.ID, "password changed"); err != nil {
		return err
	}
	if err := a.Store.AddAudit(ctx, store.AuditEntry{Actor: "cli", Action: "user.update", Target: authz.User(acc.ID), Result: "ok", Detail: "password changed"}); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "password of %s changed; its sessions were ended\n", acc.Username)
	return nil
}

func apikeyCmd(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		return usageErr("apikey create | list | revoke")
	}
	switch args[0] {
	case "create":
		return apikeyCreate(ctx, args[1:], env)
	case "list":
		return apikeyList(ctx, args[1:], env)
	case "revoke":
		return apikeyRevoke(ctx, args[1:], env)
	}
	return usageErr("unknown apikey command %q: create, list or revoke", args[0])
}

func apikeyCreate(ctx context.Context, args []string, env Env) error {
	var user, name, guilds, tier string
	var write bool
	a, cfg, rest, err := openAppConfig(ctx, "apikey create", args, env, func(fs *flag.FlagSet) {
		fs.StringVar(&user, "user", "", "owner's username (the key acts as this user in its guilds)")
		fs.StringVar(&name, "name", "", "what the key is for")
		fs.StringVar(&guilds, "guilds", "*", "comma-separated guild IDs the key may use, or * for all of the owner's")
		fs.StringVar(&tier, "tier", "", "rate tier (see --api-key-tiers; empty: --api-key-tier)")
		fs.BoolVar(&write, "write", false, "allow changes (ingest, settings), not only reads")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	if user == "" || len(rest) > 0 {
		return usageErr("usage: spywatcher apikey create --user USERNAME [--guilds ID,ID|*] [--write] [--tier T] [--name N]")
	}
	acc, err := a.Store.AccountByUsername(ctx, user)
	if err != nil {
		return fmt.Errorf("user %s: %w", user, err)
	}
	tiers, err := auth.ParseTiers(cfg.APIKeyTiers)
	if err != nil {
		return err
	}
	if tier == "" {
		tier = cfg.APIKeyTier
	}
	if _, ok := tiers[tier]; !ok {
		return usageErr("tier %q: one of %v", tier, auth.TierNames(tiers))
	}
	gs := strings.Split(guilds, ",")
	for _, g := range gs {
		if !(g == authz.AnyDomain && len(gs) == 1) && !event.IsSnowflake(g) {
			return usageErr("--guilds: Discord IDs or * alone")
		}
	}
	id, secret := auth.NewAPIKey()
	if _, err := a.Store.CreateAPIKey(ctx, store.APIKey{ID: id, AccountID: acc.ID, Name: name, Prefix: secret[:len(auth.APIKeyPrefix)+8],
		Guilds: gs, Write: write, Tier: tier}, auth.HashToken(secret)); err != nil {
		return err
	}
	if err := a.Authz.Link(ctx, authz.APIKey(id), authz.User(acc.ID), gs...); err != nil {
		return err
	}
	if err := a.Store.AddAudit(ctx, store.AuditEntry{Actor: "cli", Action: "apikey.create", Target: "apikey:" + id, Result: "ok",
		Detail: fmt.Sprintf("owner=%s guilds=%s write=%v tier=%s", user, guilds, write, tier)}); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "API key %s for %s (shown once, stored hashed):\n", id, user)
	fmt.Fprintln(env.Stdout, secret)
	return nil
}

func apikeyList(ctx context.Context, args []string, env Env) error {
	var user string
	a, _, err := openApp(ctx, "apikey list", args, env, func(fs *flag.FlagSet) {
		fs.StringVar(&user, "user", "", "only this user's keys")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	owner := ""
	if user != "" {
		acc, err := a.Store.AccountByUsername(ctx, user)
		if err != nil {
			return fmt.Errorf("user %s: %w", user, err)
		}
		owner = acc.ID
	}
	keys, err := a.Store.ListAPIKeys(ctx, owner)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPREFIX\tOWNER\tNAME\tGUILDS\tWRITE\tTIER\tLAST USED\tREVOKED")
	for _, k := range keys {
		last, rev := "-", "-"
		if k.LastUsedAt != nil {
			last = k.LastUsedAt.Format("2006-01-02 15:04")
		}
		if k.RevokedAt != nil {
			rev = k.RevokedAt.Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%s\t%s\t%s\n", k.ID, k.Prefix, k.AccountID, k.Name, strings.Join(k.Guilds, ","), k.Write, k.Tier, last, rev)
	}
	return tw.Flush()
}

func apikeyRevoke(ctx context.Context, args []string, env Env) error {
	a, rest, err := openApp(ctx, "apikey revoke", args, env)
	if err != nil {
		return err
	}
	defer a.Close()
	if len(rest) != 1 {
		return usageErr("usage: spywatcher apikey revoke ID")
	}
	if err := a.Store.RevokeAPIKey(ctx, rest[0]); err != nil {
		return fmt.Errorf("API key %s: %w", rest[0], err)
	}
	if err := a.Authz.RemoveSubject(ctx, authz.APIKey(rest[0])); err != nil {
		return err
	}
	if err := a.Store.AddAudit(ctx, store.AuditEntry{Actor: "cli", Action: "apikey.revoke", Target: "apikey:" + rest[0], Result: "ok"}); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "API key %s revoked\n", rest[0])
	return nil
}
