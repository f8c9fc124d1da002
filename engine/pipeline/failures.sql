-- name: attempts
-- The latest attempts of jobs in the state filled in below (`aborted`, or `retry`: waiting for
-- the next try), oldest first. The state is written into the text, not passed as a parameter,
-- so that its partial index serves every plan; so is which later attempts count (after an
-- abort only a replay or a discard comes, which a small partial index finds).
SELECT a.job_id, a.job_created_at, a.destination_id, d.name AS destination, a.at, a.attempt,
       a.status_code, a.error, a.response, a.next_retry_at
FROM job_attempts a
JOIN destinations d ON d.id = a.destination_id
WHERE a.state = '{state}'
  AND (%(destination)s::text IS NULL OR d.name = %(destination)s::text)
  AND (%(since)s::timestamptz IS NULL OR a.at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR a.at <= %(until)s::timestamptz)
  AND (%(job_ids)s::bigint[] IS NULL OR a.job_id = ANY(%(job_ids)s::bigint[]))
  AND (a.at, a.job_id) > (%(after_at)s::timestamptz, %(after_id)s::bigint)
  AND NOT EXISTS (
      SELECT 1 FROM job_attempts b
      WHERE b.job_id = a.job_id AND b.job_created_at = a.job_created_at
        AND b.attempt > a.attempt AND {later})
ORDER BY a.at, a.job_id
LIMIT %(limit)s

-- name: failed
-- Those jobs (the attempts above, put in where it says so), with what they hold: the event if
-- retained, the request.
SELECT j.id AS job_id, j.created_at, j.destination_id, a.destination, j.source_id,
       j.message_id, j.event_type, j.event_name, j.user_key, a.at AS failed_at,
       a.attempt AS attempts, a.status_code, a.error, a.response, a.next_retry_at,
       j.request::text AS request, j.ingest_tx::text AS ingest_tx, j.ingest_id, j.partition,
       j.received_at, j.events, j.member_txs::text[] AS member_txs, j.member_ids
FROM ({attempts}) a
JOIN jobs j ON j.id = a.job_id AND j.created_at = a.job_created_at
ORDER BY a.at, j.id

-- name: now
SELECT clock_timestamp()

-- name: lock_replays
-- One batch of a replay or discard at a time: the next finds the jobs the last one settled.
SELECT pg_advisory_xact_lock(hashtext('sluice: failed replay'))

-- name: events
SELECT id, payload::text, received_at, message_id FROM ingest_log
WHERE (tx, id) IN (SELECT * FROM unnest(%(txs)s::text[]::xid8[], %(ids)s::bigint[]))

-- name: settle
-- Failed jobs leave the list: replayed (new jobs carry their events) or discarded.
INSERT INTO job_attempts (job_id, job_created_at, destination_id, attempt, state)
SELECT *, %(state)s
FROM unnest(%(ids)s::bigint[], %(created)s::timestamptz[], %(destinations)s::uuid[],
            %(attempts)s::integer[])
