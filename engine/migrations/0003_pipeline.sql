-- The delivery pipeline: time-partitioned ingest log and router jobs, append-only attempt rows,
-- per-partition read positions, per-minute stats.
--
-- Big tables are partitioned by day so that retention drops whole partitions instead of
-- deleting rows (no VACUUM storms). Partitions are named <table>_pYYYYMMDD and cover one UTC
-- day; the worker creates them ahead of time, and a DEFAULT partition catches anything that
-- arrives when it has not (an insert never fails for want of a partition).

CREATE FUNCTION sluice_ensure_daily_partitions(parent regclass, first_day date, days integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    day date;
    name text;
BEGIN
    FOR i IN 0 .. days - 1 LOOP
        day := first_day + i;
        name := format('%s_p%s', parent::text, to_char(day, 'YYYYMMDD'));
        CONTINUE WHEN to_regclass(name) IS NOT NULL;
        BEGIN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                name, parent,
                day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
        EXCEPTION
            -- The day is already covered: by the pre-partitioning table, or by rows that
            -- landed in the DEFAULT partition. Those rows stay where they are.
            WHEN invalid_object_definition OR check_violation THEN NULL;
        END;
    END LOOP;
END $$;

-- The ingest log becomes partitioned by received_at. Rows already written stay in the old
-- table, attached as the partition for everything up to tomorrow.
ALTER TABLE ingest_log ALTER COLUMN id DROP IDENTITY;
ALTER TABLE ingest_log DROP CONSTRAINT ingest_log_pkey;
ALTER TABLE ingest_log RENAME TO ingest_log_initial;
CREATE SEQUENCE ingest_log_id_seq AS bigint;
SELECT setval('ingest_log_id_seq', COALESCE((SELECT max(id) FROM ingest_log_initial), 0) + 1,
              false);

CREATE TABLE ingest_log (
    id           bigint NOT NULL DEFAULT nextval('ingest_log_id_seq'),
    tx           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    source_id    uuid NOT NULL,
    partition    smallint NOT NULL,
    received_at  timestamptz NOT NULL,
    message_id   text NOT NULL,
    payload      json NOT NULL
) PARTITION BY RANGE (received_at);
ALTER SEQUENCE ingest_log_id_seq OWNED BY ingest_log.id;
ALTER TABLE ingest_log ATTACH PARTITION ingest_log_initial
    FOR VALUES FROM (MINVALUE) TO (date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day');
CREATE TABLE ingest_log_default PARTITION OF ingest_log DEFAULT;
-- The processor reads in commit order; duplicates are looked up by message id, through a hash
-- index: a client chooses the id, and a B-tree refuses keys over ~2.7 kB (one such event would
-- fail its whole group commit), while a hash index stores 4-byte hashes whatever the length.
CREATE INDEX ingest_log_order ON ingest_log (tx, id);
CREATE INDEX ingest_log_message ON ingest_log USING hash (message_id);

-- Router jobs: one outgoing request each, written by the processor in the same transaction
-- that advances its read position. `user_key` and `partition` keep per-user order.
CREATE SEQUENCE jobs_id_seq AS bigint;
CREATE TABLE jobs (
    id              bigint NOT NULL DEFAULT nextval('jobs_id_seq'),
    tx              xid8 NOT NULL DEFAULT pg_current_xact_id(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    destination_id  uuid NOT NULL,
    source_id       uuid NOT NULL,
    partition       smallint NOT NULL,
    user_key        text NOT NULL,
    ingest_tx       xid8 NOT NULL,  -- (ingest_tx, ingest_id): the event, for a replay
    ingest_id       bigint NOT NULL,
    received_at     timestamptz NOT NULL,
    message_id      text NOT NULL,
    event_type      text NOT NULL,
    event_name      text,
    request         json NOT NULL
) PARTITION BY RANGE (created_at);
ALTER SEQUENCE jobs_id_seq OWNED BY jobs.id;
CREATE TABLE jobs_default PARTITION OF jobs DEFAULT;
CREATE INDEX jobs_order ON jobs (destination_id, tx, id);
CREATE INDEX jobs_id ON jobs (id);

-- What happened to each job, appended and never updated: the latest row is its state.
-- Partitioned by the job's creation time so a job and its attempts are dropped together.
CREATE TABLE job_attempts (
    job_id          bigint NOT NULL,
    job_created_at  timestamptz NOT NULL,
    destination_id  uuid NOT NULL,
    attempt         integer NOT NULL,
    state           text NOT NULL
        CHECK (state IN ('delivered', 'retry', 'aborted', 'replayed', 'discarded')),
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    status_code     integer,
    error           text,
    response        text,
    next_retry_at   timestamptz
) PARTITION BY RANGE (job_created_at);
CREATE TABLE job_attempts_default PARTITION OF job_attempts DEFAULT;
CREATE INDEX job_attempts_job ON job_attempts (job_id, attempt);
CREATE INDEX job_attempts_aborted ON job_attempts (destination_id, at) WHERE state = 'aborted';

SELECT sluice_ensure_daily_partitions(t, (now() AT TIME ZONE 'UTC')::date, 8)
FROM unnest(ARRAY['ingest_log', 'jobs', 'job_attempts']::regclass[]) AS t;

-- How far the processor has read each partition of the ingest log, in commit order.
CREATE TABLE processor_positions (
    partition  smallint PRIMARY KEY,
    tx         xid8 NOT NULL DEFAULT '0',
    id         bigint NOT NULL DEFAULT 0
);
INSERT INTO processor_positions (partition) SELECT generate_series(0, 63);

-- Per destination and partition, every job up to here is delivered or aborted.
CREATE TABLE router_positions (
    destination_id  uuid NOT NULL,
    partition       smallint NOT NULL,
    tx              xid8 NOT NULL,
    id              bigint NOT NULL,
    PRIMARY KEY (destination_id, partition)
);

-- Per-minute counters. Source-level outcomes (received, duplicate) use the nil destination.
CREATE TABLE stats_minute (
    minute          timestamptz NOT NULL,
    source_id       uuid NOT NULL,
    destination_id  uuid NOT NULL,
    outcome         text NOT NULL,
    events          bigint NOT NULL,
    PRIMARY KEY (minute, source_id, destination_id, outcome)
);

-- Per-destination delivery settings (concurrency, rate limit, retry budget), beside the
-- vendor settings in `config` which keep RudderStack's keys.
ALTER TABLE destinations ADD COLUMN delivery jsonb NOT NULL DEFAULT '{}';
