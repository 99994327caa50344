-- +goose Up
-- Accounts, sessions, API keys, authorization rules and the audit log.
-- Secrets are never stored: passwords as argon2id hashes, refresh tokens and
-- API keys as SHA-256 of 256-bit random values.

-- accounts are people who log in: local (password) or Discord (discord_id).
CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL DEFAULT '',
    password_hash TEXT    NOT NULL DEFAULT '', -- '': no password login
    discord_id    TEXT UNIQUE,
    disabled      BOOLEAN NOT NULL DEFAULT false,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until  BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    last_login_at BIGINT
);

-- sessions are refresh-token families: every refresh rotates the token, and
-- presenting a used one revokes the session.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    account_id    TEXT    NOT NULL,
    method        TEXT    NOT NULL,
    csrf          TEXT    NOT NULL,
    ip            TEXT    NOT NULL DEFAULT '',
    user_agent    TEXT    NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    revoke_reason TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sessions_account ON sessions (account_id, created_at);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT    NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    account_id   TEXT    NOT NULL,
    name         TEXT    NOT NULL DEFAULT '',
    prefix       TEXT    NOT NULL,
    key_hash     TEXT    NOT NULL UNIQUE,
    guilds       TEXT    NOT NULL, -- '*' or comma-separated guild IDs
    write        BOOLEAN NOT NULL DEFAULT false,
    tier         TEXT    NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE api_key_usage (
    key_id   TEXT    NOT NULL,
    day      BIGINT NOT NULL, -- unix day (UTC)
    requests BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, day)
);

-- authz_rules are the casbin policies that change at run time (role
-- assignments, API key scopes, plugin grants); the built-in role
-- definitions come from permissions/policy.csv.
CREATE TABLE authz_rules (
    ptype TEXT NOT NULL,
    v0    TEXT NOT NULL,
    v1    TEXT NOT NULL,
    v2    TEXT NOT NULL DEFAULT '',
    v3    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (ptype, v0, v1, v2, v3)
);

-- authz_version changes with every change to authz_rules, so that an
-- instance can tell cheaply whether to reload them.
CREATE TABLE authz_version (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO authz_version (id, version) VALUES (1, 0);

-- guild_access says who may see a guild besides its admins and moderators.
CREATE TABLE guild_access (
    guild_id        TEXT PRIMARY KEY,
    member_access   BOOLEAN NOT NULL DEFAULT false,
    moderator_roles TEXT    NOT NULL DEFAULT '', -- comma-separated Discord role IDs
    updated_at      BIGINT NOT NULL
);

-- signing_keys sign access tokens; several are live during a rotation.
CREATE TABLE signing_keys (
    id         TEXT PRIMARY KEY,
    secret     TEXT    NOT NULL,
    created_at BIGINT NOT NULL
);

-- oauth_states are pending Discord logins (state and PKCE verifier), used once.
CREATE TABLE oauth_states (
    state_hash TEXT PRIMARY KEY,
    verifier   TEXT    NOT NULL,
    return_to  TEXT    NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id         BIGSERIAL PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor      TEXT    NOT NULL DEFAULT '',
    action     TEXT    NOT NULL,
    target     TEXT    NOT NULL DEFAULT '',
    guild_id   TEXT    NOT NULL DEFAULT '',
    result     TEXT    NOT NULL,
    ip         TEXT    NOT NULL DEFAULT '',
    user_agent TEXT    NOT NULL DEFAULT '',
    detail     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_guild ON audit_log (guild_id, id);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE oauth_states;
DROP TABLE signing_keys;
DROP TABLE guild_access;
DROP TABLE authz_version;
DROP TABLE authz_rules;
DROP TABLE api_key_usage;
DROP TABLE api_keys;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE accounts;
