-- The live feed shared by the nodes: what each node publishes to its SSE and
-- WebSocket clients, numbered once for the whole cluster so that every node
-- shows the same ids (a client moved to another node resumes by its id).
-- Ids are taken under the lock of the one row of `_feed_head`, held until
-- commit: id order is commit order, so a node reading `id > last` misses none.
CREATE TABLE webhooks_emitter_feed_head (
    one     BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    last_id BIGINT  NOT NULL
);
INSERT INTO webhooks_emitter_feed_head (one, last_id) VALUES (true, 0);

CREATE TABLE webhooks_emitter_feed (
    id    BIGINT  PRIMARY KEY,
    topic TEXT    NOT NULL,
    event TEXT    NOT NULL,
    data  BYTEA   NOT NULL,
    json  BOOLEAN NOT NULL
);
