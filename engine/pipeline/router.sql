-- name: positions
SELECT partition, tx::text, id FROM router_positions
WHERE destination_id = %(destination)s AND partition = ANY(%(partitions)s)

-- name: read
-- A destination's jobs in commit order (see the processor's read), each with what its
-- attempts so far came to: settled jobs are skipped, retried ones resume their budget.
SELECT j.id, j.tx::text, j.created_at, j.partition, j.user_key, j.source_id, j.request::text,
       j.events, coalesce(a.settled, false), coalesce(a.attempts, 0), a.first_at, a.next_retry_at,
       j.received_at
FROM jobs j
LEFT JOIN LATERAL (
    SELECT bool_or(x.state <> 'retry') AS settled, count(*) AS attempts, min(x.at) AS first_at,
           max(x.next_retry_at) AS next_retry_at
    FROM job_attempts x
    WHERE x.job_id = j.id AND x.job_created_at = j.created_at
) a ON true
WHERE j.destination_id = %(destination)s
  AND (j.tx, j.id) > (%(tx)s::text::xid8, %(id)s)
  AND j.tx < pg_snapshot_xmin(pg_current_snapshot())
  AND j.partition = ANY(%(partitions)s)
ORDER BY j.tx, j.id
LIMIT %(limit)s
