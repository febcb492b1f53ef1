-- Each emitter's counters, kept by the batch that does what they count
-- (under the lease, for deliveries and attempts), so that stats go on from
-- them after a restart or a takeover.
ALTER TABLE webhooks_emitter_emitters
    ADD COLUMN delivered       BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN failed_attempts BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN dead_lettered   BIGINT NOT NULL DEFAULT 0;
