-- The store's keyspace: every tree of the embedded store, one row a key.
-- bytea compares byte by byte, so `ORDER BY key` is sled's key order.
CREATE TABLE keyspace (
    tree  text  NOT NULL,
    key   bytea NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (tree, key)
);
