-- Fragments put into the queries below where they say {columns} and {walk}.

-- name: columns
l.id, l.tx::text AS tx, l.source_id, l.partition, l.received_at, l.message_id,
l.payload->>'type' AS type, coalesce(l.payload->>'event', l.payload->>'name') AS name,
l.payload->>'userId' AS user_id, l.payload->>'anonymousId' AS anonymous_id,
l.payload::text AS payload

-- name: walk
-- At most `scan` events walked back from a point, in commit order (the processor's:
-- ingest_log_order, per day partition, read backwards), so that a filter matching nothing
-- never reads the whole log. Only rows every older transaction has finished before are
-- taken, so that a page asking for what came after its newest row never skips one that
-- committed late.
SELECT * FROM ingest_log
WHERE (tx, id) < (%(before_tx)s::xid8, %(before_id)s::bigint)
  AND (tx, id) > (%(after_tx)s::xid8, %(after_id)s::bigint)
  AND tx < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY tx DESC, id DESC
LIMIT %(scan)s

-- name: recent
-- The newest events of the walk that pass the filters.
SELECT {columns}
FROM ({walk}) l
WHERE (%(source)s::uuid IS NULL OR l.source_id = %(source)s::uuid)
  AND (%(type)s::text IS NULL OR l.payload->>'type' = %(type)s::text)
  AND (%(name)s::text IS NULL
       OR coalesce(l.payload->>'event', l.payload->>'name') = %(name)s::text)
  AND (%(user)s::text IS NULL OR l.payload->>'userId' = %(user)s::text
       OR l.payload->>'anonymousId' = %(user)s::text)
ORDER BY l.tx DESC, l.id DESC
LIMIT %(limit)s

-- name: walked
-- Where the walk ends (the next page of a search starts there), and how many it went
-- through (fewer than `scan`: it reached the oldest).
SELECT w.tx::text, w.id, count(*) OVER () FROM ({walk}) w
ORDER BY w.tx, w.id
LIMIT 1

-- name: event
SELECT {columns}
FROM ingest_log l
WHERE l.tx = %(tx)s::xid8 AND l.id = %(id)s
  AND (%(at)s::timestamptz IS NULL OR l.received_at = %(at)s::timestamptz)

-- name: processed
-- Has the processor read past the event (in its partition's commit order)?
SELECT (%(tx)s::xid8, %(id)s::bigint) <= (p.tx, p.id)
FROM processor_positions p WHERE p.partition = %(partition)s

-- name: jobs
-- The jobs made from an event (and from its replays): its own, found by its id, and the file
-- bundles holding it, among its destination's jobs of the day that followed. Each with its
-- tries.
WITH made AS (
    SELECT * FROM jobs
    WHERE ingest_id = %(id)s AND ingest_tx = %(tx)s::xid8
      AND created_at >= %(at)s::timestamptz - interval '1 hour'
    UNION ALL
    SELECT * FROM jobs
    WHERE destination_id = ANY(%(bundled)s::uuid[]) AND partition = %(partition)s
      AND created_at >= %(at)s::timestamptz - interval '1 hour'
      AND created_at < %(at)s::timestamptz + interval '1 day'
      AND member_ids @> ARRAY[%(id)s::bigint] AND ingest_id <> %(id)s
)
SELECT j.id, j.destination_id, j.created_at, j.request::text AS request, j.events,
       coalesce(a.tries, '[]')::text AS tries
FROM made j
LEFT JOIN LATERAL (
    SELECT json_agg(json_build_object(
               'attempt', x.attempt, 'state', x.state, 'at', x.at, 'status', x.status_code,
               'error', x.error, 'response', x.response, 'next', x.next_retry_at)
           ORDER BY x.attempt) AS tries
    FROM job_attempts x
    WHERE x.job_id = j.id AND x.job_created_at = j.created_at
) a ON true
ORDER BY j.created_at, j.id
