-- The ingest log: every accepted event, appended by the gateway's group commit.
--
-- `tx` records the writing transaction so that a reader can take only rows whose transaction
-- is older than every transaction still running (pg_snapshot_xmin): identity values are handed
-- out before commit, so id order alone is not commit order when several gateways write at once.
-- `partition` is the hash bucket of the event's user, fixed at ingestion so that per-user order
-- can be kept by whoever owns the bucket. The payload is `json`, not `jsonb`: the gateway has
-- already validated it, the log is read whole, and skipping jsonb's conversion makes each
-- insert about a third cheaper.

CREATE TABLE ingest_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    source_id    uuid NOT NULL,
    partition    smallint NOT NULL,
    received_at  timestamptz NOT NULL,
    message_id   text NOT NULL,
    payload      json NOT NULL
);
