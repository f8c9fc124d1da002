-- The gateway's commits move to a log without an index on message ids: that index took a third
-- of PostgreSQL's time per accepted event (each entry lands on a random page of it), on the
-- path every request waits for. Duplicates are now found by the processor, in a table of the
-- message ids it has seen, written in the transaction that advances its positions.
--
-- `ingest_log` stays as it is (an older version still running meanwhile writes and reads it,
-- and its days are dropped as usual); `ingest_events` is like it, and `ingested` is both, read
-- in one commit order.

-- (Its columns, their defaults: the ids from the same sequence.)
CREATE TABLE ingest_events (LIKE ingest_log INCLUDING DEFAULTS) PARTITION BY RANGE (received_at);
CREATE TABLE ingest_events_default PARTITION OF ingest_events DEFAULT
    WITH (autovacuum_vacuum_insert_threshold = -1, toast.autovacuum_vacuum_insert_threshold = -1);
CREATE INDEX ingest_events_order ON ingest_events (tx, id);

CREATE VIEW ingested AS
SELECT id, tx, source_id, partition, received_at, message_id, payload FROM ingest_log
UNION ALL
SELECT id, tx, source_id, partition, received_at, message_id, payload FROM ingest_events;

-- The message id of each event the processor has read, with its source, user partition and
-- receipt: whoever holds a partition's position writes its rows, in the transaction that
-- advances it. Dropped by the day with the log. Looked up by the message id's hash, as the log
-- was (0016).
CREATE TABLE seen_messages (
    partition    smallint NOT NULL,
    source_id    uuid NOT NULL,
    received_at  timestamptz NOT NULL,
    message_id   text NOT NULL
) PARTITION BY RANGE (received_at);
CREATE TABLE seen_messages_default PARTITION OF seen_messages DEFAULT
    WITH (autovacuum_vacuum_insert_threshold = -1, toast.autovacuum_vacuum_insert_threshold = -1);
CREATE INDEX seen_messages_message ON seen_messages (hashtext(message_id));

-- Both are only appended to and dropped by the day: no vacuums after inserts (see 0020),
-- their DEFAULT partitions' (above) included.
CREATE OR REPLACE FUNCTION sluice_ensure_daily_partitions(parent regclass, first_day date, days integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    day date;
    name text;
    options text := CASE WHEN parent IN ('ingest_log'::regclass, 'ingest_events'::regclass,
                                         'seen_messages'::regclass)
                         THEN ' WITH (autovacuum_vacuum_insert_threshold = -1,'
                              ' toast.autovacuum_vacuum_insert_threshold = -1)' ELSE '' END;
BEGIN
    FOR i IN 0 .. days - 1 LOOP
        day := first_day + i;
        name := format('%s_p%s', parent::text, to_char(day, 'YYYYMMDD'));
        CONTINUE WHEN to_regclass(name) IS NOT NULL;
        BEGIN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)%s',
                name, parent,
                day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC',
                options);
        EXCEPTION
            -- The day is already covered: by rows that landed in the DEFAULT partition.
            -- Those rows stay where they are.
            WHEN invalid_object_definition OR check_violation THEN NULL;
        END;
    END LOOP;
END $$;

SELECT sluice_ensure_daily_partitions('ingest_events', (now() AT TIME ZONE 'UTC')::date, 8);
-- The processor keeps the message ids of events received before the upgrade too: their days'
-- (as far back as the default retention; housekeeping drops those not needed).
SELECT sluice_ensure_daily_partitions('seen_messages', (now() AT TIME ZONE 'UTC')::date - 8, 16);
