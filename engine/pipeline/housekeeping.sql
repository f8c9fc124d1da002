-- name: ensure_partitions
SELECT sluice_ensure_daily_partitions(t, (now() AT TIME ZONE 'UTC')::date, %(days)s)
FROM unnest(ARRAY['ingest_log', 'jobs', 'job_attempts']::regclass[]) AS t

-- name: expired_partitions
-- Partitions of the ingest log and the jobs whose whole range is older than the retention.
SELECT p.relname, i.inhparent::regclass::text
FROM pg_inherits i
JOIN pg_class p ON p.oid = i.inhrelid
CROSS JOIN LATERAL (
    SELECT substring(pg_get_expr(p.relpartbound, p.oid) FROM 'TO \(''([^'']+)''\)')::timestamptz
        AS upper
) bound
WHERE i.inhparent IN ('ingest_log'::regclass, 'jobs'::regclass)
  AND bound.upper < now() - %(retention)s::interval
ORDER BY bound.upper

-- name: drop_partition
DROP TABLE {partition}
