-- An application's own small records beside the queues, by namespace and key
-- (the server keeps its endpoints and idempotency keys here). `written_at`
-- lets a namespace of short-lived records be pruned by age in the database.
CREATE TABLE webhooks_emitter_records (
    namespace  TEXT        NOT NULL,
    key        TEXT        NOT NULL,
    value      BYTEA       NOT NULL,
    written_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, key)
);
CREATE INDEX webhooks_emitter_records_age ON webhooks_emitter_records (namespace, written_at);
