-- Cluster mode: who runs what, and changes every node must see.

-- A lease is held by one node until `expires_at`; its holder renews it, any
-- node takes it once it has expired. `lane:<destination id>` runs a lane,
-- `leader` the periodic work of the cluster.
CREATE TABLE leases (
    name       text        PRIMARY KEY,
    holder     text        NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Each node's heartbeat: nodes seen within a lease time are live, and lanes
-- are spread over them.
CREATE TABLE nodes (
    id      text        PRIMARY KEY,
    seen_at timestamptz NOT NULL
);

-- Every node caches what these trees hold, or runs lanes over `queue`: a
-- change is announced on the channel `hookgate` (LISTEN), named by what to
-- refresh. A new queue key may be due before anything its lane waits for.
CREATE FUNCTION hookgate_announce() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text := COALESCE(NEW.tree, OLD.tree);
BEGIN
    PERFORM pg_notify('hookgate', CASE changed
        WHEN 'queue' THEN 'queue'
        WHEN 'paused' THEN 'paused'
        ELSE 'objects' END);
    RETURN NULL;
END $$;

CREATE TRIGGER hookgate_announce_queued AFTER INSERT ON keyspace
    FOR EACH ROW WHEN (NEW.tree = 'queue') EXECUTE FUNCTION hookgate_announce();
CREATE TRIGGER hookgate_announce_inserted AFTER INSERT OR UPDATE ON keyspace
    FOR EACH ROW WHEN (NEW.tree IN ('paused', 'api_objects', 'transformations', 'applications', 'event_types', 'endpoints'))
    EXECUTE FUNCTION hookgate_announce();
CREATE TRIGGER hookgate_announce_removed AFTER DELETE ON keyspace
    FOR EACH ROW WHEN (OLD.tree IN ('paused', 'api_objects', 'transformations', 'applications', 'event_types', 'endpoints'))
    EXECUTE FUNCTION hookgate_announce();
