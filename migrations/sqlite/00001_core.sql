-- +goose Up
-- Times are unix milliseconds (INTEGER) in both dialects so that queries and
-- cursors are identical; see host/internal/store/doc.go.

CREATE TABLE guilds (
    id           TEXT PRIMARY KEY,
    name         TEXT    NOT NULL DEFAULT '',
    owner_id     TEXT    NOT NULL DEFAULT '',
    icon         TEXT    NOT NULL DEFAULT '',
    member_count INTEGER NOT NULL DEFAULT 0,
    timezone     TEXT    NOT NULL DEFAULT 'UTC',
    removed_at   INTEGER,
    first_seen   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE channels (
    id         TEXT PRIMARY KEY,
    guild_id   TEXT    NOT NULL,
    name       TEXT    NOT NULL DEFAULT '',
    type       TEXT    NOT NULL DEFAULT 'text',
    parent_id  TEXT    NOT NULL DEFAULT '',
    position   INTEGER NOT NULL DEFAULT 0,
    nsfw       INTEGER NOT NULL DEFAULT 0,
    deleted_at INTEGER,
    updated_at INTEGER NOT NULL
);
CREATE INDEX channels_guild ON channels (guild_id);

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    username    TEXT    NOT NULL DEFAULT '',
    global_name TEXT    NOT NULL DEFAULT '',
    avatar      TEXT    NOT NULL DEFAULT '',
    bot         INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- members holds one row per user per guild: identity, membership, counters
-- and most columns the member list sorts by. What changes with nearly every
-- event (presence, last seen) lives in member_presence instead, so that the
-- presence updates which make up most traffic never rewrite this wide,
-- well-indexed row.
CREATE TABLE members (
    guild_id        TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    username        TEXT    NOT NULL DEFAULT '',
    name            TEXT    NOT NULL DEFAULT '',
    nick            TEXT    NOT NULL DEFAULT '',
    joined_at       INTEGER NOT NULL DEFAULT 0, -- 0: unknown
    left_at         INTEGER,
    banned          INTEGER NOT NULL DEFAULT 0,
    first_seen      INTEGER NOT NULL,
    last_message_at INTEGER NOT NULL DEFAULT 0, -- 0: never
    message_count   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, user_id)
);

-- member_presence is the live state of each member: when last seen, the
-- overall status and, per client, the status and since when, which session
-- tracking needs. It is narrow and lightly indexed because it changes with
-- nearly every event. Every member has a row.
CREATE TABLE member_presence (
    guild_id      TEXT    NOT NULL,
    user_id       TEXT    NOT NULL,
    last_seen     INTEGER NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'offline',
    status_at     INTEGER NOT NULL DEFAULT 0,
    desktop       TEXT    NOT NULL DEFAULT '',
    desktop_since INTEGER NOT NULL DEFAULT 0,
    mobile        TEXT    NOT NULL DEFAULT '',
    mobile_since  INTEGER NOT NULL DEFAULT 0,
    web           TEXT    NOT NULL DEFAULT '',
    web_since     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, user_id)
);
CREATE INDEX member_presence_online ON member_presence (guild_id) WHERE status <> 'offline';
CREATE INDEX member_presence_last_seen ON member_presence (guild_id, last_seen, user_id);

-- Lists show members still in the guild; partial indexes on left_at IS NULL
-- give every sort order of the member list an index (so a page is an index
-- range scan, not a sort of the whole guild) and make the count covering.
CREATE INDEX members_present ON members (guild_id) WHERE left_at IS NULL;
CREATE INDEX members_by_name ON members (guild_id, name, user_id) WHERE left_at IS NULL;
CREATE INDEX members_by_joined ON members (guild_id, joined_at, user_id) WHERE left_at IS NULL;
CREATE INDEX members_by_first_seen ON members (guild_id, first_seen, user_id) WHERE left_at IS NULL;
CREATE INDEX members_by_last_message ON members (guild_id, last_message_at, user_id) WHERE left_at IS NULL;
CREATE INDEX members_by_messages ON members (guild_id, message_count, user_id) WHERE left_at IS NULL;

CREATE TABLE member_roles (
    guild_id TEXT    NOT NULL,
    user_id  TEXT    NOT NULL,
    role_id  TEXT    NOT NULL,
    since    INTEGER NOT NULL,
    PRIMARY KEY (guild_id, user_id, role_id)
);

CREATE TABLE role_changes (
    event_id TEXT    NOT NULL,
    guild_id TEXT    NOT NULL,
    user_id  TEXT    NOT NULL,
    role_id  TEXT    NOT NULL,
    added    INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (event_id, role_id)
);
CREATE INDEX role_changes_guild_at ON role_changes (guild_id, at);
CREATE INDEX role_changes_member ON role_changes (guild_id, user_id, at);

CREATE TABLE membership_changes (
    event_id TEXT PRIMARY KEY,
    guild_id TEXT    NOT NULL,
    user_id  TEXT    NOT NULL,
    action   TEXT    NOT NULL, -- join | leave
    at       INTEGER NOT NULL
);
CREATE INDEX membership_changes_guild_at ON membership_changes (guild_id, at);

CREATE TABLE bans (
    event_id  TEXT PRIMARY KEY,
    guild_id  TEXT    NOT NULL,
    user_id   TEXT    NOT NULL,
    reason    TEXT    NOT NULL DEFAULT '',
    banned_at INTEGER NOT NULL,
    lifted_at INTEGER
);
CREATE INDEX bans_member ON bans (guild_id, user_id);

-- events is the raw, idempotent log: one row per event id. Message content is
-- never part of data (the core strips it before storing).
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    guild_id    TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    user_id     TEXT    NOT NULL DEFAULT '',
    channel_id  TEXT    NOT NULL DEFAULT '',
    at          INTEGER NOT NULL,
    data        TEXT    NOT NULL,
    ingested_at INTEGER NOT NULL
);
CREATE INDEX events_guild_at ON events (guild_id, at, id);
CREATE INDEX events_guild_user_at ON events (guild_id, user_id, at, id);

-- presence_sessions are closed stretches of one status on one client; the open
-- stretch lives on the member row until the next change closes it.
CREATE TABLE presence_sessions (
    guild_id   TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    client     TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER NOT NULL
);
CREATE INDEX presence_sessions_member ON presence_sessions (guild_id, user_id, ended_at);

CREATE TABLE messages (
    id          TEXT PRIMARY KEY,
    guild_id    TEXT    NOT NULL,
    channel_id  TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    length      INTEGER NOT NULL DEFAULT 0,
    attachments INTEGER NOT NULL DEFAULT 0,
    embeds      INTEGER NOT NULL DEFAULT 0,
    mentions    INTEGER NOT NULL DEFAULT 0,
    reply_to    TEXT    NOT NULL DEFAULT '',
    edited_at   INTEGER,
    edit_count  INTEGER NOT NULL DEFAULT 0,
    deleted_at  INTEGER
);
CREATE INDEX messages_member ON messages (guild_id, user_id, created_at);
CREATE INDEX messages_channel ON messages (guild_id, channel_id, created_at);

CREATE TABLE typing (
    event_id   TEXT PRIMARY KEY,
    guild_id   TEXT    NOT NULL,
    channel_id TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    at         INTEGER NOT NULL
);
CREATE INDEX typing_guild_at ON typing (guild_id, at);

-- activity_hourly counts what happened per guild, user and hour; user_id ''
-- is the guild's total (the only row that counts presence updates).
CREATE TABLE activity_hourly (
    guild_id         TEXT    NOT NULL,
    user_id          TEXT    NOT NULL,
    hour             INTEGER NOT NULL,
    messages         INTEGER NOT NULL DEFAULT 0,
    edits            INTEGER NOT NULL DEFAULT 0,
    deletes          INTEGER NOT NULL DEFAULT 0,
    typing           INTEGER NOT NULL DEFAULT 0,
    presence_updates INTEGER NOT NULL DEFAULT 0,
    voice_updates    INTEGER NOT NULL DEFAULT 0,
    joins            INTEGER NOT NULL DEFAULT 0,
    leaves           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, user_id, hour)
);

CREATE TABLE admin_tokens (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);

-- +goose Down
DROP TABLE admin_tokens;
DROP TABLE activity_hourly;
DROP TABLE typing;
DROP TABLE messages;
DROP TABLE presence_sessions;
DROP TABLE events;
DROP TABLE bans;
DROP TABLE membership_changes;
DROP TABLE role_changes;
DROP TABLE member_roles;
DROP TABLE member_presence;
DROP TABLE members;
DROP TABLE users;
DROP TABLE channels;
DROP TABLE guilds;
