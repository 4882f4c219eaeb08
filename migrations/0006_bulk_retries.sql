-- Bulk retries run on the leader, whichever node's API started them: a new
-- one (tree `bulk_retries`) is announced as `bulk_retries`, so that the
-- leader starts it at once (`src/api/bulk.rs`). Its progress is saved with it.

CREATE OR REPLACE FUNCTION hookgate_announce() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text := COALESCE(NEW.tree, OLD.tree);
BEGIN
    PERFORM pg_notify('hookgate', CASE changed
        WHEN 'queue' THEN 'queue'
        WHEN 'paused' THEN 'paused'
        WHEN 'signing_secret' THEN 'signing_secret'
        WHEN 'bulk_retries' THEN 'bulk_retries'
        ELSE 'objects' END);
    RETURN NULL;
END $$;

CREATE TRIGGER hookgate_announce_bulk_retry AFTER INSERT ON keyspace
    FOR EACH ROW WHEN (NEW.tree = 'bulk_retries') EXECUTE FUNCTION hookgate_announce();
