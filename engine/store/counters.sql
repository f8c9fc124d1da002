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
