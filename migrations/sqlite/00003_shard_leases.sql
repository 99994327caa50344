-- +goose Up
-- A lease is a named lock that a host instance holds until expires_at (unix
-- ms) and keeps by renewing it. The Discord gateway takes one per shard, so
-- that exactly one of several instances ingests it and another takes over
-- when the holder dies, and one per identify bucket, so that instances
-- together stay within Discord's identify concurrency.

CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT    NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

-- +goose Down
DROP TABLE leases;
