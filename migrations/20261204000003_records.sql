-- An application's own small records beside the queues, by namespace and key
-- (the server keeps its endpoints and idempotency keys here).
CREATE TABLE webhooks_emitter_records (
    namespace TEXT  NOT NULL,
    key       TEXT  NOT NULL,
    value     BYTEA NOT NULL,
    PRIMARY KEY (namespace, key)
);
