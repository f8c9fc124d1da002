-- name: add
INSERT INTO stats_minute (minute, source_id, destination_id, outcome, events)
SELECT date_trunc('minute', now()), s, d, o, n
FROM unnest(%(sources)s::uuid[], %(destinations)s::uuid[], %(outcomes)s::text[],
            %(events)s::bigint[]) AS t(s, d, o, n)
ON CONFLICT (minute, source_id, destination_id, outcome)
DO UPDATE SET events = stats_minute.events + EXCLUDED.events

-- name: add_latency
INSERT INTO latency_minute (minute, destination_id, bucket, events)
SELECT date_trunc('minute', now()), d, b, n
FROM unnest(%(destinations)s::uuid[], %(buckets)s::smallint[], %(events)s::bigint[])
     AS t(d, b, n)
ON CONFLICT (minute, destination_id, bucket)
DO UPDATE SET events = latency_minute.events + EXCLUDED.events

-- name: add_names
INSERT INTO names_minute (minute, source_id, type, name, events)
SELECT date_trunc('minute', now()), s, t, n, e
FROM unnest(%(sources)s::uuid[], %(types)s::text[], %(names)s::text[], %(events)s::bigint[])
     AS x(s, t, n, e)
ON CONFLICT (minute, source_id, type, name)
DO UPDATE SET events = names_minute.events + EXCLUDED.events

-- name: delete_old_stats
DELETE FROM stats_minute WHERE minute < now() - %(retention)s::interval

-- name: delete_old_latency
DELETE FROM latency_minute WHERE minute < now() - %(retention)s::interval

-- name: delete_old_names
DELETE FROM names_minute WHERE minute < now() - %(retention)s::interval

-- name: aborted_for_settling
-- The `aborted` counts failures being settled may be taken from, locked in key order (the
-- order `add` locks in, so that a settle and the worker never deadlock).
SELECT s.minute, s.source_id, s.destination_id, s.events
FROM stats_minute s
JOIN unnest(%(minutes)s::timestamptz[], %(sources)s::uuid[], %(destinations)s::uuid[])
     AS k(minute, source_id, destination_id)
  ON s.minute = k.minute AND s.source_id = k.source_id AND s.destination_id = k.destination_id
WHERE s.outcome = 'aborted' AND s.events > 0
ORDER BY s.minute, s.source_id, s.destination_id
FOR UPDATE OF s

-- name: settle
-- Move counts from `aborted` to a person's verdict (`replayed`, `discarded`) at the same
-- minute: one row per key (each given once), in key order.
WITH moved AS (
    SELECT * FROM unnest(%(minutes)s::timestamptz[], %(sources)s::uuid[],
                         %(destinations)s::uuid[], %(events)s::bigint[])
        AS t(minute, source_id, destination_id, events)
), taken AS (
    UPDATE stats_minute s SET events = s.events - m.events
    FROM moved m
    WHERE s.minute = m.minute AND s.source_id = m.source_id
      AND s.destination_id = m.destination_id AND s.outcome = 'aborted'
)
INSERT INTO stats_minute (minute, source_id, destination_id, outcome, events)
SELECT minute, source_id, destination_id, %(state)s, events FROM moved
ORDER BY minute, source_id, destination_id
ON CONFLICT (minute, source_id, destination_id, outcome)
DO UPDATE SET events = stats_minute.events + EXCLUDED.events
