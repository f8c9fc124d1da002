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

-- name: attempts_partition
-- The job_attempts partition covering the same range as a jobs partition.
SELECT p.relname
FROM pg_inherits i
JOIN pg_class p ON p.oid = i.inhrelid
WHERE i.inhparent = 'job_attempts'::regclass
  AND pg_get_expr(p.relpartbound, p.oid) = (
      SELECT pg_get_expr(j.relpartbound, j.oid) FROM pg_class j WHERE j.relname = %(jobs)s)

-- name: unprocessed_in
-- Any row of this ingest log partition the processor has not read yet?
SELECT EXISTS (
    SELECT 1 FROM {partition} l,
         (SELECT tx, id FROM processor_positions ORDER BY tx, id LIMIT 1) m
    WHERE (l.tx, l.id) > (m.tx, m.id))

-- name: unsettled_in
-- Any job of this partition, for an enabled destination, not yet delivered or aborted? (Jobs
-- of a destination switched off for longer than the retention go with their day.)
SELECT EXISTS (
    SELECT 1 FROM {partition} j
    JOIN destinations d ON d.id = j.destination_id AND d.enabled
    WHERE NOT EXISTS (
        SELECT 1 FROM job_attempts a
        WHERE a.job_id = j.id AND a.job_created_at = j.created_at AND a.state <> 'retry'))

-- name: drop_partition
DROP TABLE {partition}

-- name: delete_old_stats
DELETE FROM stats_minute WHERE minute < now() - %(retention)s::interval

-- name: delete_old_latency
DELETE FROM latency_minute WHERE minute < now() - %(retention)s::interval

-- name: delete_old_names
DELETE FROM names_minute WHERE minute < now() - %(retention)s::interval
