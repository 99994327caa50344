-- +goose Up
-- Installed plugins: one row per plugin, the active version's manifest.
CREATE TABLE plugins (
    id           TEXT PRIMARY KEY,
    version      TEXT    NOT NULL,
    manifest     TEXT    NOT NULL,
    sha256       TEXT    NOT NULL,
    installed_at INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- A plugin's state in one guild. A plugin runs in a guild when enabled, not
-- quarantined, and every permission it requires is granted there.
CREATE TABLE plugin_guilds (
    plugin_id         TEXT    NOT NULL,
    guild_id          TEXT    NOT NULL,
    enabled           INTEGER NOT NULL DEFAULT 0,
    config            TEXT    NOT NULL DEFAULT '{}',
    config_version    INTEGER NOT NULL DEFAULT 0,
    quarantined_at    INTEGER,
    quarantine_reason TEXT    NOT NULL DEFAULT '',
    last_error        TEXT    NOT NULL DEFAULT '',
    last_error_at     INTEGER,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (plugin_id, guild_id)
);

-- Grants: the permissions a guild admin gave a plugin in a guild. hosts is a
-- JSON list for http.fetch.
CREATE TABLE plugin_grants (
    plugin_id  TEXT    NOT NULL,
    guild_id   TEXT    NOT NULL,
    permission TEXT    NOT NULL,
    hosts      TEXT    NOT NULL DEFAULT '[]',
    granted_by TEXT    NOT NULL DEFAULT '',
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (plugin_id, guild_id, permission)
);

-- Key-value data of a plugin in a guild. user_id ties an entry to a member so
-- that deleting the member's data deletes it too.
CREATE TABLE plugin_kv (
    plugin_id  TEXT    NOT NULL,
    guild_id   TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      BLOB    NOT NULL,
    user_id    TEXT    NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (plugin_id, guild_id, key)
);
CREATE INDEX plugin_kv_user ON plugin_kv (guild_id, user_id) WHERE user_id <> '';

-- plugin_state counts changes to plugins, plugin_guilds and plugin_grants so
-- that every host process notices changes made by another (the CLI, or
-- another instance) with one cheap read.
CREATE TABLE plugin_state (
    id      INTEGER PRIMARY KEY,
    version INTEGER NOT NULL
);
INSERT INTO plugin_state (id, version) VALUES (1, 0);

-- +goose Down
DROP TABLE plugin_state;
DROP TABLE plugin_kv;
DROP TABLE plugin_grants;
DROP TABLE plugin_guilds;
DROP TABLE plugins;
