-- The Events list's status chips: what `jobs.made_of` (engine/store/jobs.sql) finds for one
-- event, for a page of them at once.

-- name: newest_jobs
-- For each event of a page (given as arrays), its newest job at each destination — made from
-- it (or a replay of it), or a file bundle holding it — with its tries but neither its
-- request (only whether one was made: `{}`, or JSON's null) nor the answers. Jobs are looked for from an hour before the
-- page's oldest event (made after it was received: the hour allows for clocks) and, for
-- bundles, until a day after its newest.
WITH page AS (
    SELECT * FROM unnest(%(txs)s::text[]::xid8[], %(ids)s::bigint[], %(partitions)s::smallint[])
        AS p(tx, id, partition)
), made AS (
    SELECT p.id AS event_id, j.id, j.destination_id, j.created_at, j.events, j.request
    FROM page p
    JOIN jobs j ON j.ingest_id = p.id AND j.ingest_tx = p.tx
    WHERE j.created_at >= %(since)s::timestamptz - interval '1 hour'
    UNION ALL
    SELECT p.id, j.id, j.destination_id, j.created_at, j.events, j.request
    FROM jobs j
    JOIN page p ON j.partition = p.partition AND j.member_ids @> ARRAY[p.id]
                   AND j.ingest_id <> p.id
    WHERE j.destination_id = ANY(%(bundled)s::uuid[])
      AND j.created_at >= %(since)s::timestamptz - interval '1 hour'
      AND j.created_at < %(until)s::timestamptz + interval '1 day'
)
SELECT DISTINCT ON (m.event_id, m.destination_id)
       m.event_id, m.id, m.destination_id, m.created_at,
       CASE json_typeof(m.request) WHEN 'null' THEN 'null' ELSE '{}' END AS request, m.events,
       coalesce(a.tries, '[]')::text AS tries
FROM made m
LEFT JOIN LATERAL (
    SELECT json_agg(json_build_object(
               'attempt', x.attempt, 'state', x.state, 'at', x.at, 'status', x.status_code,
               'error', x.error, 'next', x.next_retry_at)
           ORDER BY x.attempt) AS tries
    FROM job_attempts x
    WHERE x.job_id = m.id AND x.job_created_at = m.created_at
) a ON true
ORDER BY m.event_id, m.destination_id, m.created_at DESC, m.id DESC
