-- A queued event is announced by the node that queued it, once for a burst
-- (src/store/keyspace/remote.rs, `announce_queued`), no longer by a trigger
-- for each row: a NOTIFY takes a lock of the whole database as it commits,
-- and one per queued event (each its own transaction) serialized commits.
DROP TRIGGER hookgate_announce_queued ON keyspace;
