-- The workspace signing secret (tree `signing_secret`): one for every node of
-- a cluster. A change is announced as `signing_secret`, so that each node
-- signs with it within a second (`src/cluster/announcements.rs`).

CREATE OR REPLACE FUNCTION hookgate_announce() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text := COALESCE(NEW.tree, OLD.tree);
BEGIN
    PERFORM pg_notify('hookgate', CASE changed
        WHEN 'queue' THEN 'queue'
        WHEN 'paused' THEN 'paused'
        WHEN 'signing_secret' THEN 'signing_secret'
        ELSE 'objects' END);
    RETURN NULL;
END $$;

CREATE TRIGGER hookgate_announce_signing_secret AFTER INSERT OR UPDATE ON keyspace
    FOR EACH ROW WHEN (NEW.tree = 'signing_secret') EXECUTE FUNCTION hookgate_announce();
