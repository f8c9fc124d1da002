-- The raw-event archive: per partition, every ingest log row up to here is stored in the
-- archive bucket (read in commit order, like processor_positions).
CREATE TABLE archive_positions (
    partition  smallint PRIMARY KEY,
    tx         xid8 NOT NULL DEFAULT '0',
    id         bigint NOT NULL DEFAULT 0
);
INSERT INTO archive_positions (partition) SELECT generate_series(0, 63);
