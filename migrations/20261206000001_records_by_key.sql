-- Pages of a namespace's records by key (`records_after`): keys compare byte
-- by byte, as the journal's do, whatever the database's collation, and this
-- index serves that order without sorting the namespace.
CREATE INDEX webhooks_emitter_records_key_c
    ON webhooks_emitter_records (namespace, key COLLATE "C");
