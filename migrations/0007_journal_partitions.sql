-- The request journal in day partitions too: retention drops a day's
-- `journal_YYYYMMDD` once every node's watermark is past it and none of its
-- requests is kept (`store/retention.rs`), instead of deleting its rows.

-- Makes the partition of one day of a table partitioned by day
-- (`<parent>_YYYYMMDD`) unless it exists. Nodes may make the same one at
-- once: they take turns. It replaces 0004's function of `keyspace_timed`
-- alone.
CREATE FUNCTION hookgate_day_partition(parent text, day integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    name text := parent || '_' || to_char(date '1970-01-01' + day, 'YYYYMMDD');
BEGIN
    IF day < 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(name));
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
                   name, parent, day, day + 1);
END $$;

DROP FUNCTION hookgate_time_partition(integer);

-- The table of 0003 steps aside (with the names of its indexes) for one
-- partitioned by `day`, whose primary key must hold it. `seq` alone still
-- numbers a node's records (`journal_nodes` hands each out once).
ALTER TABLE journal RENAME TO journal_unpartitioned;
ALTER TABLE journal_unpartitioned RENAME CONSTRAINT journal_pkey TO journal_unpartitioned_pkey;
ALTER INDEX journal_by_day RENAME TO journal_unpartitioned_by_day;

CREATE TABLE journal (
    node   text    NOT NULL,
    seq    bigint  NOT NULL,
    day    integer NOT NULL,
    record bytea   NOT NULL,
    PRIMARY KEY (node, seq, day)
) PARTITION BY RANGE (day);
CREATE INDEX journal_by_day ON journal (node, day);

SELECT hookgate_day_partition('journal', day)
FROM (SELECT DISTINCT day FROM journal_unpartitioned) AS days;

INSERT INTO journal (node, seq, day, record)
SELECT node, seq, day, record FROM journal_unpartitioned;

DROP TABLE journal_unpartitioned;
