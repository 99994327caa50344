-- +goose Up
-- A fencing token per lease name: it grows by one every time the lease
-- changes hands (or is taken again after it lapsed), and never goes back,
-- because releasing a lease now expires its row instead of deleting it. A
-- holder presents its token with writes that must not come from a holder
-- that lost the lease while it was paused (host/internal/jobs).
-- Expand-only: the previous release ignores the column.
ALTER TABLE leases ADD COLUMN token BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE leases DROP COLUMN token;
