-- The gateway's local spool (engine/gateway/spool.py): how far each file of accepted events,
-- kept on a host's disk while the database was away, has been moved into the ingest log. The
-- position moves in the same transaction as the rows it covers.
CREATE TABLE gateway_spool (
    file        text PRIMARY KEY,  -- host/name
    drained     bigint NOT NULL,   -- bytes of the file already in the ingest log
    updated_at  timestamptz NOT NULL DEFAULT now()
);
