-- name: recent
-- Events per source, destination and outcome in the last `window` (by the database's clock,
-- which stamped them), of one source or destination or of all, and when each last happened:
-- the end of its latest minute (no later than now). A range scan of the primary key, which
-- starts with the minute.
SELECT source_id, destination_id, outcome, sum(events)::bigint AS events,
       least(max(minute) + interval '1 minute', now()) AS last
FROM stats_minute
WHERE minute >= date_trunc('minute', now()) - %(window)s::interval
  AND (%(source)s::uuid IS NULL OR source_id = %(source)s::uuid)
  AND (%(destination)s::uuid IS NULL OR destination_id = %(destination)s::uuid)
GROUP BY source_id, destination_id, outcome

-- name: series
-- Events per source, destination and outcome in buckets of `step` (aligned on the hour) over
-- the last `window`, by the database's clock: what the Stats page charts.
SELECT date_bin(%(step)s::interval, minute, timestamptz '2000-01-01 00:00:00+00') AS bucket,
       source_id, destination_id, outcome, sum(events)::bigint AS events
FROM stats_minute
WHERE minute >= date_bin(%(step)s::interval, now() - %(window)s::interval,
                         timestamptz '2000-01-01 00:00:00+00')
GROUP BY 1, 2, 3, 4

-- name: now
SELECT now()

-- name: latency
-- Deliveries per destination and latency bucket over the last `window`.
SELECT destination_id, bucket, sum(events)::bigint
FROM latency_minute
WHERE minute >= date_trunc('minute', now()) - %(window)s::interval
GROUP BY destination_id, bucket

-- name: top_names
-- The most frequent call types and names over the last `window` (the nameless left out).
SELECT type, name, sum(events)::bigint AS events
FROM names_minute
WHERE minute >= date_trunc('minute', now()) - %(window)s::interval AND name <> ''
GROUP BY type, name
ORDER BY events DESC, type, name
LIMIT %(limit)s
