-- The next attempt's due time of a started event that failed (unix
-- milliseconds, 0: at once), so that the node that delivers it next, after
-- a restart or a takeover, waits out the backoff instead of retrying at once.
ALTER TABLE webhooks_emitter_events ADD COLUMN retry_at_ms BIGINT NOT NULL DEFAULT 0;
