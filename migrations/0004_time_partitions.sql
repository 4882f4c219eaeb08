-- Time partitions: the trees that grow with traffic and go by age live in
-- `keyspace_timed`, one range partition per UTC day of their keys' ids, so
-- that retention drops a day's table instead of deleting its rows one by one
-- (see `store/keyspace/remote.rs` for which trees, `store/retention.rs` for
-- when a day goes).

-- The UTC day (since the epoch) of the id a key starts with (`src/ids.rs`:
-- 3 letters, `_`, 16 hex digits of `ms << 16`); -1 for any other key.
-- Not STRICT, so that PostgreSQL inlines it into each statement instead of
-- running it as a function (planned anew in every statement that calls it).
CREATE FUNCTION hookgate_key_day(key bytea) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN length(key) >= 20 AND substring(key FROM 4 FOR 1) = '\x5f'::bytea
            AND encode(substring(key FROM 5 FOR 16), 'escape') ~ '^[0-7][0-9a-f]{15}$'
        THEN ((('x' || encode(substring(key FROM 5 FOR 16), 'escape'))::bit(64)::bigint >> 16)
              / 86400000)::integer
        ELSE -1
    END
$$;

-- `day` is always `hookgate_key_day(key)` (a partition key must be a plain
-- column), so (tree, key) alone is unique as in `keyspace`.
CREATE TABLE keyspace_timed (
    tree  text    NOT NULL,
    key   bytea   NOT NULL,
    value bytea   NOT NULL,
    day   integer NOT NULL,
    PRIMARY KEY (tree, key, day)
) PARTITION BY RANGE (day);

-- Keys without a time: never dropped by age (retention deletes their rows).
CREATE TABLE keyspace_timed_unstamped PARTITION OF keyspace_timed
    FOR VALUES FROM (MINVALUE) TO (0);

-- Makes the partition of one day (`keyspace_timed_YYYYMMDD`) unless it exists.
-- Nodes may make the same one at once: they take turns.
CREATE FUNCTION hookgate_time_partition(day integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    name text := 'keyspace_timed_' || to_char(date '1970-01-01' + day, 'YYYYMMDD');
BEGIN
    IF day < 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(name));
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF keyspace_timed FOR VALUES FROM (%s) TO (%s)',
                   name, day, day + 1);
END $$;

-- The rows of those trees written before this migration move over.
SELECT hookgate_time_partition(day)
FROM (SELECT DISTINCT hookgate_key_day(key) AS day FROM keyspace
      WHERE tree IN ('requests', 'request_payloads', 'events', 'event_payloads',
                     'attempts', 'event_attempts', 'ignored_events')) AS days;

WITH moved AS (
    DELETE FROM keyspace
    WHERE tree IN ('requests', 'request_payloads', 'events', 'event_payloads',
                   'attempts', 'event_attempts', 'ignored_events')
    RETURNING tree, key, value
)
INSERT INTO keyspace_timed (tree, key, value, day)
SELECT tree, key, value, hookgate_key_day(key) FROM moved;
