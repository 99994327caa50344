-- +goose Up
-- A fencing token per lease name: it grows by one every time the lease
-- changes hands (or is taken again after it lapsed), and never goes back,
-- because releasing a lease now expires its row instead of deleting it. A
-- holder presents its token with writes that must not come from a holder
-- that lost the lease while it was paused (host/internal/jobs).
-- Expand-only: the previous release ignores the column.
ALTER TABLE leases ADD COLUMN token BIGINT NOT NULL DEFAULT 0;

-- Installed plugins' code, so that every host instance can load a plugin
-- installed through any of them (each keeps a copy in its data directory).
-- One row per plugin: the installed version's.
CREATE TABLE plugin_artifacts (
    plugin_id TEXT PRIMARY KEY,
    version   TEXT   NOT NULL,
    sha256    TEXT   NOT NULL,
    code      BLOB NOT NULL
);

-- +goose Down
DROP TABLE plugin_artifacts;
ALTER TABLE leases DROP COLUMN token;
