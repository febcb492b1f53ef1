-- The PostgreSQL store of webhooks-emitter: several nodes share one durable
-- queue per emitter id; one node at a time (the lease holder) delivers it.

-- One row per emitter id ever attached: its sequence counter (taken in the
-- enqueue transaction, so that sequence order is commit order) and its
-- cluster-wide paused state.
CREATE TABLE webhooks_emitter_emitters (
    emitter          TEXT PRIMARY KEY,
    next_seq         BIGINT  NOT NULL DEFAULT 1,
    next_dead_letter BIGINT  NOT NULL DEFAULT 1,
    paused           BOOLEAN NOT NULL DEFAULT FALSE
);

-- Who delivers an emitter's events: the owner while `expires_at` is ahead.
-- Every claim raises `epoch`; every write of a holder is checked against it.
CREATE TABLE webhooks_emitter_leases (
    emitter    TEXT PRIMARY KEY REFERENCES webhooks_emitter_emitters (emitter) ON DELETE CASCADE,
    owner      TEXT,
    epoch      BIGINT      NOT NULL DEFAULT 0,
    expires_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
);

-- Queued and started events, per emitter in sequence order.
CREATE TABLE webhooks_emitter_events (
    emitter  TEXT    NOT NULL,
    seq      BIGINT  NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    record   BYTEA   NOT NULL,
    PRIMARY KEY (emitter, seq)
);

CREATE TABLE webhooks_emitter_dead_letters (
    emitter TEXT   NOT NULL,
    id      BIGINT NOT NULL,
    record  BYTEA  NOT NULL,
    PRIMARY KEY (emitter, id)
);

-- Live nodes (a heartbeat each lease tick), to share the leases out.
CREATE TABLE webhooks_emitter_nodes (
    name    TEXT PRIMARY KEY,
    seen_at TIMESTAMPTZ NOT NULL
);

-- Each node's configuration of each emitter (a digest), to warn about drift.
CREATE TABLE webhooks_emitter_configs (
    emitter     TEXT NOT NULL,
    node        TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (emitter, node)
);
