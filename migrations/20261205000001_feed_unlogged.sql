-- The live feed is best effort (like a client's buffer): its rows need not
-- survive a crash of PostgreSQL, so they are not written to the WAL, which
-- makes each publication's insert and pruning cheaper. After a crash the
-- table comes back empty; the head (logged) keeps its number, so ids never
-- go back, and a node that finds rows missing tells its clients they
-- missed some, as after any gap.
ALTER TABLE webhooks_emitter_feed SET UNLOGGED;
