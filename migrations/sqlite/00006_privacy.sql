-- +goose Up
-- Privacy: what each guild collects and keeps, who asked not to be tracked,
-- and the record of data requests. 00005 belongs to analytics; goose applies
-- numbered files in order and allows the gap.

-- guild_settings says what is collected in a guild and for how long it is
-- kept. A guild without a row collects nothing but its own and its
-- channels' metadata. Retention windows are in days; 0 keeps forever.
CREATE TABLE guild_settings (
    guild_id         TEXT PRIMARY KEY,
    track_presence   INTEGER NOT NULL DEFAULT 0,
    track_messages   INTEGER NOT NULL DEFAULT 0,
    track_typing     INTEGER NOT NULL DEFAULT 0,
    track_voice      INTEGER NOT NULL DEFAULT 0,
    track_members    INTEGER NOT NULL DEFAULT 0,
    events_days      INTEGER NOT NULL DEFAULT 30,
    presence_days    INTEGER NOT NULL DEFAULT 90,
    messages_days    INTEGER NOT NULL DEFAULT 90,
    scores_days      INTEGER NOT NULL DEFAULT 90,
    plugin_data_days INTEGER NOT NULL DEFAULT 90,
    aggregates_days  INTEGER NOT NULL DEFAULT 0,
    removal_requested_at INTEGER, -- an admin asked to delete the guild's data
    delete_on_leave  INTEGER NOT NULL DEFAULT 0,
    updated_by       TEXT    NOT NULL DEFAULT '',
    updated_at       INTEGER  NOT NULL
);

-- Guilds tracked before settings existed keep being tracked: their operator
-- chose to run Spywatcher there. Guilds seen from now on start with nothing.
INSERT INTO guild_settings (guild_id, track_presence, track_messages, track_typing, track_voice, track_members, updated_by, updated_at)
SELECT id, 1, 1, 1, 1, 1, 'migration 00006', updated_at FROM guilds;

-- opt_outs are people who asked not to be tracked: in one guild, or in
-- every guild when guild_id is ''.
CREATE TABLE opt_outs (
    user_id    TEXT NOT NULL,
    guild_id   TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, guild_id)
);

-- privacy_state counts changes to guild_settings and opt_outs, so that every
-- instance's ingest filter notices a change made elsewhere with one read.
CREATE TABLE privacy_state (
    id      INTEGER PRIMARY KEY,
    version INTEGER NOT NULL
);
INSERT INTO privacy_state (id, version) VALUES (1, 0);

-- privacy_requests record every export and deletion: who asked, about whom,
-- in which guild ('' for all), and what was done.
CREATE TABLE privacy_requests (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL, -- export | delete | guild_delete
    user_id      TEXT NOT NULL DEFAULT '',
    guild_id     TEXT NOT NULL DEFAULT '',
    requested_by TEXT NOT NULL DEFAULT '',
    reason       TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL, -- done | partial | failed
    detail       TEXT NOT NULL DEFAULT '{}',
    created_at   INTEGER NOT NULL,
    completed_at INTEGER
);
CREATE INDEX privacy_requests_guild ON privacy_requests (guild_id, created_at);

-- enc_key names the key that sealed a plugin_kv value ('' = stored plain).
ALTER TABLE plugin_kv ADD COLUMN enc_key TEXT NOT NULL DEFAULT '';

-- Retention deletes by guild and time; these indexes keep each bounded
-- batch an index range scan instead of a walk over the guild's rows.
CREATE INDEX presence_sessions_guild_end ON presence_sessions (guild_id, ended_at);
CREATE INDEX messages_guild_created ON messages (guild_id, created_at);
CREATE INDEX activity_hourly_guild_hour ON activity_hourly (guild_id, hour);
CREATE INDEX plugin_kv_guild_updated ON plugin_kv (guild_id, updated_at) WHERE user_id <> '';
CREATE INDEX guilds_removed ON guilds (removed_at) WHERE removed_at IS NOT NULL;
-- Deleting one member's rows finds them by member, not by walking the guild.
CREATE INDEX typing_member ON typing (guild_id, user_id);
CREATE INDEX membership_changes_member ON membership_changes (guild_id, user_id);

-- +goose Down
DROP INDEX membership_changes_member;
DROP INDEX typing_member;
DROP INDEX guilds_removed;
DROP INDEX plugin_kv_guild_updated;
DROP INDEX activity_hourly_guild_hour;
DROP INDEX messages_guild_created;
DROP INDEX presence_sessions_guild_end;
ALTER TABLE plugin_kv DROP COLUMN enc_key;
DROP TABLE privacy_requests;
DROP TABLE privacy_state;
DROP TABLE opt_outs;
DROP TABLE guild_settings;
