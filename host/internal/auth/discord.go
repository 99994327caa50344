package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spywatcher/spywatcher/host/internal/authz"
	"github.com/spywatcher/spywatcher/host/internal/store"
)

// DiscordConfig configures Discord OAuth2. The endpoints are settings so
// that tests (and Discord-compatible servers) can stand in for Discord.
type DiscordConfig struct {
	ClientID     string
	ClientSecret string
	RedirectURL  string // this host's /api/v1/auth/discord/callback as Discord sees it
	AuthorizeURL string
	TokenURL     string
	APIURL       string // base of /users/@me and /users/@me/guilds
}

// Discord permission bits that make someone a guild admin here.
const (
	discordAdministrator = 1 << 3
	discordManageGuild   = 1 << 5
)

// ErrOAuthState means a callback's state is missing, wrong, used or expired.
var ErrOAuthState = errors.New("auth: invalid OAuth state")

// ErrOAuthFailed means Discord refused the code or could not be asked.
var ErrOAuthFailed = fmt.Errorf("%w: Discord login failed", ErrUnauthenticated)

// DiscordStore is what a Discord login reads and writes.
type DiscordStore interface {
	AddOAuthState(ctx context.Context, stateHash string, st store.OAuthState, expireBefore time.Time) error
	TakeOAuthState(ctx context.Context, stateHash string) (store.OAuthState, error)
	AccountByDiscordID(ctx context.Context, discordID string) (store.Account, error)
	CreateAccount(ctx context.Context, a store.Account) (store.Account, error)
	LinkDiscord(ctx context.Context, id, discordID, displayName string) error
	RecordLogin(ctx context.Context, id string) error
	ListGuilds(ctx context.Context) ([]store.Guild, error)
	GetGuildAccess(ctx context.Context, guildID string) (store.GuildAccess, error)
	KnownMemberRoles(ctx context.Context, guildID, userID string) ([]string, bool, error)
}

// RoleSetter replaces a subject's roles; *authz.Enforcer implements it.
type RoleSetter interface {
	SetRoles(ctx context.Context, sub string, roles map[string]string) error
}

// Discord logs people in with Discord OAuth2 (authorization code with state
// and PKCE, scopes identify and guilds) and maps their Discord standing to
// roles in the guilds this host tracks.
type Discord struct {
	cfg   DiscordConfig
	st    DiscordStore
	roles RoleSetter
	http  *http.Client
	now   func() time.Time
}

// StateTTL is how long a started Discord login may take.
const StateTTL = 10 * time.Minute

// NewDiscord returns the Discord login; client may be nil.
func NewDiscord(cfg DiscordConfig, st DiscordStore, roles RoleSetter, client *http.Client, now func() time.Time) *Discord {
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	if now == nil {
		now = time.Now
	}
	return &Discord{cfg: cfg, st: st, roles: roles, http: client, now: now}
}

// Begin starts a login: it returns the URL to send the browser to and the
// state, which the caller also binds to the browser (a cookie).
func (d *Discord) Begin(ctx context.Context, returnTo string) (authURL, state string, err error) {
	state = randomString(24)
	verifier := randomString(48)
	now := d.now()
	if err := d.st.AddOAuthState(ctx, HashToken(state), store.OAuthState{Verifier: verifier, ReturnTo: SafeReturnTo(returnTo), CreatedAt: now}, now.Add(-StateTTL)); err != nil {
		return "", "", fmt.Errorf("auth: discord login: %w", err)
	}
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {d.cfg.ClientID},
		"redirect_uri":          {d.cfg.RedirectURL},
		"scope":                 {"identify guilds"},
		"state":                 {state},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	return d.cfg.AuthorizeURL + "?" + q.Encode(), state, nil
}

// SafeReturnTo keeps only a local path, so that a login cannot be turned
// into an open redirect.
func SafeReturnTo(p string) string {
	if p == "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return "/"
	}
	return p
}

// DiscordResult is a completed Discord login.
type DiscordResult struct {
	Account  store.Account
	Roles    map[string]string // guild -> role ("" for none)
	ReturnTo string
}

// Complete finishes a login: it checks and consumes the state, trades the
// code (with the PKCE verifier) for a Discord token, reads the user and
// their guilds, finds or creates the account and sets its roles.
func (d *Discord) Complete(ctx context.Context, state, code string) (DiscordResult, error) {
	var res DiscordResult
	if state == "" || len(state) > 128 {
		return res, fmt.Errorf("%w: missing", ErrOAuthState)
	}
	st, err := d.st.TakeOAuthState(ctx, HashToken(state))
	if errors.Is(err, store.ErrNotFound) {
		return res, fmt.Errorf("%w: unknown or already used", ErrOAuthState)
	}
	if err != nil {
		return res, err
	}
	if d.now().Sub(st.CreatedAt) > StateTTL {
		return res, fmt.Errorf("%w: expired", ErrOAuthState)
	}
	res.ReturnTo = st.ReturnTo
	if code == "" || len(code) > 512 {
		return res, fmt.Errorf("%w: no code", ErrOAuthFailed)
	}
	tok, err := d.exchange(ctx, code, st.Verifier)
	if err != nil {
		return res, err
	}
	var me struct {
		ID         string `json:"id"`
		Username   string `json:"username"`
		GlobalName string `json:"global_name"`
	}
	if err := d.get(ctx, tok, "/users/@me", &me); err != nil {
		return res, err
	}
	if me.ID == "" {
		return res, fmt.Errorf("%w: Discord returned no user", ErrOAuthFailed)
	}
	var guilds []DiscordGuild
	if err := d.get(ctx, tok, "/users/@me/guilds", &guilds); err != nil {
		return res, err
	}
	name := me.GlobalName
	if name == "" {
		name = me.Username
	}
	acc, err := d.st.AccountByDiscordID(ctx, me.ID)
	if errors.Is(err, store.ErrNotFound) {
		acc, err = d.st.CreateAccount(ctx, store.Account{ID: randomID(), Username: "discord-" + me.ID, DisplayName: name, DiscordID: me.ID})
	} else if err == nil && acc.DisplayName != name {
		err = d.st.LinkDiscord(ctx, acc.ID, me.ID, name)
	}
	if err != nil {
		return res, fmt.Errorf("auth: discord account: %w", err)
	}
	if acc.Disabled {
		return res, ErrAccountDisabled
	}
	tracked, err := d.tracked(ctx, me.ID)
	if err != nil {
		return res, err
	}
	res.Roles = DiscordRoles(guilds, tracked)
	if err := d.roles.SetRoles(ctx, authz.User(acc.ID), res.Roles); err != nil {
		return res, err
	}
	if err := d.st.RecordLogin(ctx, acc.ID); err != nil {
		return res, err
	}
	res.Account = acc
	return res, nil
}

// TrackedGuild is what the host knows about a guild and the person logging in.
type TrackedGuild struct {
	ID          string
	Access      store.GuildAccess
	MemberRoles []string // the person's Discord roles there, as ingested
}

func (d *Discord) tracked(ctx context.Context, discordID string) ([]TrackedGuild, error) {
	gs, err := d.st.ListGuilds(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TrackedGuild, 0, len(gs))
	for _, g := range gs {
		ga, err := d.st.GetGuildAccess(ctx, g.ID)
		if err != nil {
			return nil, err
		}
		roles, _, err := d.st.KnownMemberRoles(ctx, g.ID, discordID)
		if err != nil {
			return nil, err
		}
		out = append(out, TrackedGuild{ID: g.ID, Access: ga, MemberRoles: roles})
	}
	return out, nil
}

// DiscordGuild is one entry of Discord's /users/@me/guilds.
type DiscordGuild struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Owner       bool   `json:"owner"`
	Permissions string `json:"permissions"`
}

// DiscordRoles maps a person's Discord guilds to roles in the tracked
// guilds: the owner is owner; Administrator or Manage Guild make an admin;
// a configured moderator role makes a moderator; any other member is a
// viewer if the guild allows member access. Every tracked guild gets an
// entry ("" for no role), so a login also takes back roles that Discord no
// longer supports.
func DiscordRoles(guilds []DiscordGuild, tracked []TrackedGuild) map[string]string {
	in := map[string]DiscordGuild{}
	for _, g := range guilds {
		in[g.ID] = g
	}
	out := map[string]string{}
	for _, t := range tracked {
		g, member := in[t.ID]
		perms, _ := strconv.ParseUint(g.Permissions, 10, 64)
		switch {
		case !member:
			out[t.ID] = ""
		case g.Owner:
			out[t.ID] = authz.RoleOwner
		case perms&(discordAdministrator|discordManageGuild) != 0:
			out[t.ID] = authz.RoleAdmin
		case intersects(t.MemberRoles, t.Access.ModeratorRoles):
			out[t.ID] = authz.RoleModerator
		case t.Access.MemberAccess:
			out[t.ID] = authz.RoleViewer
		default:
			out[t.ID] = ""
		}
	}
	return out
}

func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func (d *Discord) exchange(ctx context.Context, code, verifier string) (string, error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {d.cfg.RedirectURL},
		"code_verifier": {verifier},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("%w: token request: %v", ErrOAuthFailed, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(d.cfg.ClientID), url.QueryEscape(d.cfg.ClientSecret))
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := d.do(req, &tok); err != nil {
		return "", err
	}
	if tok.AccessToken == "" || !strings.EqualFold(tok.TokenType, "Bearer") {
		return "", fmt.Errorf("%w: no bearer token in the token response", ErrOAuthFailed)
	}
	return tok.AccessToken, nil
}

func (d *Discord) get(ctx context.Context, tok, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(d.cfg.APIURL, "/")+path, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrOAuthFailed, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	return d.do(req, v)
}

// do runs a request to Discord. Errors name the endpoint and status, never
// the tokens or the response body (which may echo them).
func (d *Discord) do(req *http.Request, v any) error {
	resp, err := d.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s unreachable", ErrOAuthFailed, req.URL.Path)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: %s: reading the answer", ErrOAuthFailed, req.URL.Path)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered %d", ErrOAuthFailed, req.URL.Path, resp.StatusCode)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %s: malformed answer", ErrOAuthFailed, req.URL.Path)
	}
	return nil
}
