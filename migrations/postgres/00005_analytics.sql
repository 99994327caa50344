-- +goose Up
-- Analytics aggregates, maintained by ingest in the same transaction as the
-- events they come from (host/internal/store/ingest.go), and member scores.
-- Every per-member table has a user_id column so that deleting a user's data
-- can find their rows.

-- presence_hourly is time online per member per UTC hour, in milliseconds:
-- on any client (online_ms), with two or more clients at once (multi_ms), and
-- per client. user_id '' is the guild's total (member-milliseconds). Idle and
-- do-not-disturb count as online: the client is connected. The stretch still
-- open (since member_presence.presence_mark) is added at query time.
CREATE TABLE presence_hourly (
    guild_id   TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    hour       BIGINT NOT NULL,
    online_ms  BIGINT NOT NULL DEFAULT 0,
    multi_ms   BIGINT NOT NULL DEFAULT 0,
    desktop_ms BIGINT NOT NULL DEFAULT 0,
    mobile_ms  BIGINT NOT NULL DEFAULT 0,
    web_ms     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, user_id, hour)
);

-- message_rhythm_daily describes the timing of a member's messages per UTC
-- day: the gaps between consecutive messages (count, sum and sum of squares,
-- in seconds, for the mean and the coefficient of variation) and the most
-- messages posted within one clock minute.
CREATE TABLE message_rhythm_daily (
    guild_id        TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    day             BIGINT NOT NULL,
    messages        BIGINT NOT NULL DEFAULT 0,
    gaps            BIGINT NOT NULL DEFAULT 0,
    gap_sum         DOUBLE PRECISION NOT NULL DEFAULT 0,
    gap_sumsq       DOUBLE PRECISION NOT NULL DEFAULT 0,
    peak_per_minute BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, user_id, day)
);

-- channel_messages_daily counts messages per member, channel and UTC day
-- (channel diversity).
CREATE TABLE channel_messages_daily (
    guild_id   TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    day        BIGINT NOT NULL,
    channel_id TEXT    NOT NULL,
    messages   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, user_id, day, channel_id)
);

-- The first message, and how many messages fell in the clock minute of the
-- last one (to carry the per-minute peak across ingest batches).
ALTER TABLE members ADD COLUMN first_message_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN last_minute_count BIGINT NOT NULL DEFAULT 0;
UPDATE members SET first_message_at = COALESCE((SELECT MIN(created_at) FROM messages g
    WHERE g.guild_id = members.guild_id AND g.user_id = members.user_id), 0)
    WHERE message_count > 0;

-- Role changes per UTC day: per role gained or lost, and which members
-- changed (role drift over long windows reads these, not every change).
CREATE TABLE role_changes_daily (
    guild_id TEXT    NOT NULL,
    day      BIGINT NOT NULL,
    role_id  TEXT    NOT NULL,
    added    BOOLEAN NOT NULL,
    changes  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, day, role_id, added)
);
CREATE TABLE role_members_daily (
    guild_id TEXT    NOT NULL,
    day      BIGINT NOT NULL,
    user_id  TEXT    NOT NULL,
    changes  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, day, user_id)
);
INSERT INTO role_changes_daily (guild_id, day, role_id, added, changes)
    SELECT guild_id, at - at % 86400000, role_id, added, COUNT(*) FROM role_changes GROUP BY 1, 2, 3, 4;
INSERT INTO role_members_daily (guild_id, day, user_id, changes)
    SELECT guild_id, at - at % 86400000, user_id, COUNT(*) FROM role_changes GROUP BY 1, 2, 3;

-- presence_mark is since when the member's set of connected clients has
-- not changed: ingest credits presence_hourly when the set changes.
ALTER TABLE member_presence ADD COLUMN presence_mark BIGINT NOT NULL DEFAULT 0;
UPDATE member_presence SET presence_mark = status_at;

-- score_runs records each scoring of a guild by one scorer plugin.
CREATE TABLE score_runs (
    id          TEXT PRIMARY KEY,
    guild_id    TEXT    NOT NULL,
    scorer      TEXT    NOT NULL,
    version     TEXT    NOT NULL DEFAULT '',
    cause       TEXT    NOT NULL DEFAULT 'schedule', -- schedule | request
    window_from BIGINT NOT NULL,
    window_to   BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    members     BIGINT NOT NULL DEFAULT 0,
    error       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX score_runs_guild ON score_runs (guild_id, scorer, started_at);

-- member_scores is each member's latest score per scorer.
CREATE TABLE member_scores (
    guild_id    TEXT    NOT NULL,
    scorer      TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    score       DOUBLE PRECISION NOT NULL,
    factors     TEXT    NOT NULL DEFAULT '[]',
    explanation TEXT    NOT NULL DEFAULT '',
    run_id      TEXT    NOT NULL,
    computed_at BIGINT NOT NULL,
    PRIMARY KEY (guild_id, scorer, user_id)
);
CREATE INDEX member_scores_rank ON member_scores (guild_id, scorer, score, user_id);

-- score_history keeps every score a member got, for trends.
CREATE TABLE score_history (
    guild_id TEXT    NOT NULL,
    scorer   TEXT    NOT NULL,
    user_id  TEXT    NOT NULL,
    at       BIGINT NOT NULL,
    score    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (guild_id, user_id, scorer, at)
);

-- +goose Down
DROP TABLE score_history;
DROP TABLE member_scores;
DROP TABLE score_runs;
ALTER TABLE member_presence DROP COLUMN presence_mark;
ALTER TABLE members DROP COLUMN last_minute_count;
ALTER TABLE members DROP COLUMN first_message_at;
DROP TABLE role_members_daily;
DROP TABLE role_changes_daily;
DROP TABLE channel_messages_daily;
DROP TABLE message_rhythm_daily;
DROP TABLE presence_hourly;
