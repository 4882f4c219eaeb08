-- The request journal in cluster mode: every request and webhook job a node
-- acknowledged, written by its commit thread one transaction per batch (the
-- ingress answers after COMMIT). `seq` orders one node's records; the
-- node's router watermark (`meta` key `routed_through/<node>`) names the
-- last it routed, and the leader routes what a dead node left past it.
CREATE TABLE journal (
    node   text    NOT NULL,
    seq    bigint  NOT NULL,
    -- Days since 1970-01-01 (UTC) when journaled: retention deletes a
    -- node's records a day at a time.
    day    integer NOT NULL,
    record bytea   NOT NULL,
    PRIMARY KEY (node, seq)
);
CREATE INDEX journal_by_day ON journal (node, day);

-- Each node that journals, and the last `seq` it used: a batch takes the
-- next ones in the statement that writes it, so a number is never used
-- twice, even once retention has deleted every record of a node.
CREATE TABLE journal_nodes (
    node     text   PRIMARY KEY,
    last_seq bigint NOT NULL
);
