-- name: ensure_partitions
SELECT sluice_ensure_daily_partitions(t, (now() AT TIME ZONE 'UTC')::date, %(days)s)
FROM unnest(ARRAY['ingest_log', 'ingest_events', 'seen_messages', 'jobs', 'job_attempts']::regclass[])
     AS t

-- name: day_partitions
-- The partitions of the ingest log (both tables), the message ids seen and the jobs, each with
-- the end of its day (none for DEFAULT).
SELECT p.oid, p.relname, i.inhparent::regclass::text AS parent, bound.upper
FROM pg_inherits i
JOIN pg_class p ON p.oid = i.inhrelid
CROSS JOIN LATERAL (
    SELECT substring(pg_get_expr(p.relpartbound, p.oid) FROM 'TO \(''([^'']+)''\)')::timestamptz
        AS upper
) bound
WHERE i.inhparent IN ('ingest_log'::regclass, 'ingest_events'::regclass,
                      'seen_messages'::regclass, 'jobs'::regclass)

-- name: expired_partitions
-- Partitions whose whole day is older than the retention.
SELECT d.relname, d.parent, d.upper FROM ({day_partitions}) d
WHERE d.upper < now() - %(retention)s::interval
ORDER BY d.upper

-- name: unfrozen_log_days
-- Days of the ingest log and of the message ids seen that are over and that no vacuum has been
-- through yet.
SELECT d.relname, d.parent, d.upper FROM ({day_partitions}) d
LEFT JOIN pg_stat_user_tables s ON s.relid = d.oid
WHERE d.parent IN ('ingest_log', 'ingest_events', 'seen_messages') AND d.upper < now()
  AND s.last_vacuum IS NULL AND s.last_autovacuum IS NULL
ORDER BY d.upper

-- name: freeze_partition
VACUUM (FREEZE) {partition}

-- name: lock_timeout
-- A drop waits for its table's lock holding the parent's: it must not keep the gateway's
-- commits waiting behind it for long (a long vacuum of that partition, say).
SET LOCAL lock_timeout = '2s'

-- name: drop_partition
DROP TABLE {partition}

-- name: forget_retired_settings
-- A destination's earlier settings, once no job made under them can be left: the oldest day of
-- jobs began a day after they were replaced (a worker may map under old settings until it
-- reloads), they are older than the retention, and no job is kept outside the days.
DELETE FROM destination_settings_retired
WHERE retired_at < (SELECT min(d.upper) - interval '2 days' FROM ({day_partitions}) d
                    WHERE d.parent = 'jobs')
  AND retired_at < now() - %(retention)s::interval
  AND NOT EXISTS (SELECT FROM jobs_default)
