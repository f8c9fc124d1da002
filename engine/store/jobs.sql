-- The jobs (one per request a destination is sent, or file it is given), their attempts, and
-- how far each destination's router has settled them: every statement on these tables.

-- name: copy_jobs
COPY jobs (destination_id, source_id, partition, user_key, ingest_tx, ingest_id, received_at,
           message_id, event_type, event_name, request, events, member_txs, member_ids)
FROM STDIN

-- name: insert_failed_job
WITH job AS (
    INSERT INTO jobs (destination_id, source_id, partition, user_key, ingest_tx, ingest_id,
                      received_at, message_id, event_type, event_name, request)
    VALUES (%(destination_id)s, %(source_id)s, %(partition)s, %(user_key)s,
            %(ingest_tx)s::text::xid8, %(ingest_id)s,
            %(received_at)s, %(message_id)s, %(event_type)s, %(event_name)s, %(request)s)
    RETURNING id, created_at, destination_id
)
INSERT INTO job_attempts (job_id, job_created_at, destination_id, attempt, state, error)
SELECT id, created_at, destination_id, 1, 'aborted', %(error)s FROM job

-- name: notify_jobs
SELECT pg_notify('sluice_jobs', '')

-- name: router_positions
SELECT partition, tx::text, id FROM router_positions
WHERE destination_id = %(destination)s AND partition = ANY(%(partitions)s)

-- name: read
-- A destination's jobs in commit order (see the processor's read). What the attempts of
-- those that have any came to is read apart (`attempted`): most have none.
SELECT j.id, j.tx::text, j.created_at, j.partition, j.user_key, j.source_id, j.request::text,
       j.events, j.received_at
FROM jobs j
WHERE j.destination_id = %(destination)s
  AND (j.tx, j.id) > (%(tx)s::text::xid8, %(id)s)
  AND j.tx < pg_snapshot_xmin(pg_current_snapshot())
  AND j.partition = ANY(%(partitions)s)
ORDER BY j.tx, j.id
LIMIT %(limit)s

-- name: attempted
-- What the attempts so far of the jobs read came to, for those that have any: settled jobs
-- are skipped, retried ones resume their budget. One scan of the attempts' job index for
-- all the ids at once, in the days the jobs were made.
SELECT x.job_id, bool_or(x.state <> 'retry'), count(*)::int, min(x.at), max(x.next_retry_at)
FROM job_attempts x
WHERE x.job_id = ANY(%(ids)s::bigint[])
  AND x.job_created_at BETWEEN %(first)s AND %(last)s
GROUP BY x.job_id

-- name: copy_attempts
COPY job_attempts (job_id, job_created_at, destination_id, attempt, state, status_code, error,
                   response, next_retry_at) FROM STDIN (FORMAT BINARY)

-- name: save_positions
INSERT INTO router_positions (destination_id, partition, tx, id)
SELECT d, p, t::xid8, i
FROM unnest(%(destinations)s::uuid[], %(partitions)s::smallint[], %(txs)s::text[],
            %(ids)s::bigint[]) AS x(d, p, t, i)
ON CONFLICT (destination_id, partition) DO UPDATE SET tx = EXCLUDED.tx, id = EXCLUDED.id
    WHERE (router_positions.tx, router_positions.id) < (EXCLUDED.tx, EXCLUDED.id)

-- name: unread
-- How many of a destination's jobs lie past what its router has read (at most %(cap)s: an
-- index range scan, cut short; index only when the worker has every partition).
SELECT count(*) FROM (
    SELECT 1 FROM jobs
    WHERE destination_id = %(destination)s
      AND (tx, id) > (%(tx)s::text::xid8, %(id)s)
      AND (%(partitions)s::int[] IS NULL OR partition = ANY(%(partitions)s::int[]))
    LIMIT %(cap)s
) past

-- name: latest
-- The latest attempts of jobs in a state (`aborted`: failed for good, or `retry`: waiting for
-- the next try), oldest first. The state is written into the text (a fragment below), not
-- passed as a parameter, so that its partial index serves every plan; so is which later
-- attempts count (after an abort only a replay or a discard comes, which a small partial
-- index finds).
SELECT a.job_id, a.job_created_at, a.destination_id, d.name AS destination, a.at, a.attempt,
       a.status_code, a.error, a.response, a.next_retry_at
FROM job_attempts a
JOIN destinations d ON d.id = a.destination_id
WHERE {state}
  AND (%(destination)s::text IS NULL OR d.name = %(destination)s::text)
  AND (%(since)s::timestamptz IS NULL OR a.at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR a.at <= %(until)s::timestamptz)
  AND (%(job_ids)s::bigint[] IS NULL OR a.job_id = ANY(%(job_ids)s::bigint[]))
  AND (%(group)s::text IS NULL OR {group_key} = %(group)s::text)
  AND (a.at, a.job_id) > (%(after_at)s::timestamptz, %(after_id)s::bigint)
  AND NOT EXISTS (
      SELECT 1 FROM job_attempts b
      WHERE b.job_id = a.job_id AND b.job_created_at = a.job_created_at
        AND b.attempt > a.attempt AND {later})
{order}

-- name: order
ORDER BY a.at, a.job_id
LIMIT %(limit)s

-- name: in_any_order
-- (Counted or grouped: sorting every one first would be wasted.)
LIMIT ALL

-- name: aborted
-- Failed for good.
a.state = 'aborted'

-- name: after_abort
-- What leaves the failed list.
b.state IN ('replayed', 'discarded')

-- name: retrying
-- Waiting for the next try.
a.state = 'retry'

-- name: after_retry
-- Any later attempt.
true

-- name: failed
-- Those jobs (the attempts above, put in where it says so), with what they hold: the event if
-- retained, the request.
SELECT j.id AS job_id, j.created_at, j.destination_id, a.destination, j.source_id,
       j.message_id, j.event_type, j.event_name, j.user_key, a.at AS failed_at,
       a.attempt AS attempts, a.status_code, a.error, a.response, a.next_retry_at,
       j.request::text AS request, j.ingest_tx::text AS ingest_tx, j.ingest_id, j.partition,
       j.received_at, j.events, j.member_txs::text[] AS member_txs, j.member_ids
FROM ({latest}) a
JOIN jobs j ON j.id = a.job_id AND j.created_at = a.job_created_at
ORDER BY a.at, j.id

-- name: count_failed
SELECT count(*) FROM ({latest}) AS f

-- name: failed_per_destination
SELECT destination, count(*) FROM ({latest}) AS f GROUP BY destination

-- name: group_key
-- A kind of failure: its HTTP status and error, the error's variable parts (ids, times, long
-- numbers) left out so that events refused for the same reason go together; hashed, to travel
-- in a page's address.
md5(coalesce(a.status_code::text, '') || ' ' || regexp_replace(coalesce(a.error, ''),
    '[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}|\d{4}-\d\d-\d\d[T ][0-9:.]+Z?|[0-9a-fA-F]{24,}|\d{4,}',
    '#', 'g'))

-- name: failed_groups
-- Those jobs by destination and kind of failure, the most frequent first: how many, the first
-- and last failed, the latest one's job id and error (a sample), and how many errors differ
-- in what the kind leaves out. Counted per error first, so that the kind is worked out once
-- for each different error, not for each job; the latest is the greatest (time in µs, job id).
WITH errors AS (
    SELECT a.destination_id, a.destination, a.status_code, a.error, count(*) AS jobs,
           sum(j.events) AS events, min(a.at) AS first_at, max(a.at) AS last_at,
           max(ARRAY[(extract(epoch FROM a.at) * 1000000)::bigint, a.job_id]) AS latest
    FROM ({latest}) a
    JOIN jobs j ON j.id = a.job_id AND j.created_at = a.job_created_at
    GROUP BY a.destination_id, a.destination, a.status_code, a.error
), kinds AS (
    SELECT a.*, {group_key} AS key FROM errors a
), groups AS (
    SELECT DISTINCT ON (destination_id, status_code, key)
           destination_id, destination, status_code, error, key, sum(jobs) OVER kind AS jobs,
           sum(events) OVER kind AS events, min(first_at) OVER kind AS first_at,
           max(last_at) OVER kind AS last_at, latest[2] AS sample_id, count(*) OVER kind AS variants
    FROM kinds
    WINDOW kind AS (PARTITION BY destination_id, status_code, key)
    ORDER BY destination_id, status_code, key, latest DESC
)
SELECT * FROM groups
ORDER BY jobs DESC, last_at DESC
LIMIT %(groups)s

-- name: replay_outcomes
-- What became of the jobs a replay made (ids in (after, until], made since `since`: a range of
-- the jobs' id index, however many replays are kept): those of an event whose earlier job of
-- the same destination was replayed since; their latest state (`sending`: none yet), how many
-- of each.
WITH made AS (
    SELECT n.id, n.created_at
    FROM jobs n
    WHERE n.id > %(after)s AND n.id <= %(until)s AND n.created_at >= %(since)s::timestamptz
      AND (%(destination)s::text IS NULL
           OR n.destination_id = (SELECT id FROM destinations WHERE name = %(destination)s))
      AND EXISTS (
          SELECT 1 FROM jobs o
          JOIN job_attempts r ON r.job_id = o.id AND r.job_created_at = o.created_at
          WHERE o.ingest_id = n.ingest_id AND o.ingest_tx = n.ingest_tx
            AND o.destination_id = n.destination_id AND o.id < n.id
            AND r.state = 'replayed' AND r.at >= %(since)s::timestamptz)
)
SELECT coalesce(last.state, 'sending') AS state, count(*)
FROM made m
LEFT JOIN LATERAL (
    SELECT a.state FROM job_attempts a
    WHERE a.job_id = m.id AND a.job_created_at = m.created_at
    ORDER BY a.attempt DESC LIMIT 1
) last ON true
GROUP BY 1

-- name: last_id
-- The last job id handed out: jobs made later have greater ones.
SELECT coalesce(pg_sequence_last_value('jobs_id_seq'), 0)

-- name: lock_replays
-- One batch of a replay or discard at a time: the next finds the jobs the last one settled.
SELECT pg_advisory_xact_lock(hashtext('sluice: failed replay'))

-- name: settle
-- Failed jobs leave the list: replayed (new jobs carry their events) or discarded.
INSERT INTO job_attempts (job_id, job_created_at, destination_id, attempt, state)
SELECT *, %(state)s
FROM unnest(%(ids)s::bigint[], %(created)s::timestamptz[], %(destinations)s::uuid[],
            %(attempts)s::integer[])

-- name: made_of
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

-- name: unsettled
-- The jobs no attempt settled yet (never tried, or to be retried), in commit order: every job
-- kept is read, so this takes a while on a big store.
SELECT d.name AS destination, s.name AS source, j.partition, j.user_key, j.received_at,
       j.message_id, j.event_type, j.event_name, j.request::text AS request, j.events
FROM jobs j
JOIN destinations d ON d.id = j.destination_id
JOIN sources s ON s.id = j.source_id
WHERE NOT EXISTS (
    SELECT 1 FROM job_attempts a
    WHERE a.job_id = j.id AND a.job_created_at = j.created_at AND a.state <> 'retry'
)
ORDER BY j.tx, j.id

-- name: restore
-- (Its event's place in the ingest log is not known here: replaying it needs the archive.)
INSERT INTO jobs (destination_id, source_id, partition, user_key, ingest_tx, ingest_id,
                  received_at, message_id, event_type, event_name, request, events)
SELECT d.id, s.id, %(partition)s, %(user_key)s, '0', 0, %(received_at)s, %(message_id)s,
       %(event_type)s, %(event_name)s, %(request)s::json, %(events)s
FROM destinations d, sources s
WHERE d.name = %(destination)s AND s.name = %(source)s

-- name: discard_all
-- A deleted destination's jobs still waiting are settled as `discarded` (else nothing would
-- ever settle them, and their day's partitions could never be dropped).
INSERT INTO job_attempts (job_id, job_created_at, destination_id, attempt, state, error)
SELECT j.id, j.created_at, j.destination_id, coalesce(a.attempts, 0) + 1, 'discarded',
       'the destination was deleted'
FROM jobs j
LEFT JOIN LATERAL (
    SELECT count(*) AS attempts, bool_or(x.state <> 'retry') AS settled FROM job_attempts x
    WHERE x.job_id = j.id AND x.job_created_at = j.created_at
) a ON true
WHERE j.destination_id = %(id)s AND NOT coalesce(a.settled, false)

-- name: attempts_partition
-- The job_attempts partition covering the same range as a jobs partition.
SELECT p.relname
FROM pg_inherits i
JOIN pg_class p ON p.oid = i.inhrelid
WHERE i.inhparent = 'job_attempts'::regclass
  AND pg_get_expr(p.relpartbound, p.oid) = (
      SELECT pg_get_expr(j.relpartbound, j.oid) FROM pg_class j WHERE j.relname = %(jobs)s)

-- name: unsettled_in
-- Any job of this partition, for an enabled destination, not yet delivered or aborted? (Jobs
-- of a destination switched off for longer than the retention go with their day.)
SELECT EXISTS (
    SELECT 1 FROM {partition} j
    JOIN destinations d ON d.id = j.destination_id AND d.enabled
    WHERE NOT EXISTS (
        SELECT 1 FROM job_attempts a
        WHERE a.job_id = j.id AND a.job_created_at = j.created_at AND a.state <> 'retry'))

-- name: newest_made_of_each
-- What `made_of` finds for one event, for a page of events at once (given as arrays): each
-- one's newest job at each destination — made from it (or a replay of it), or a file bundle
-- holding it — with its tries but neither its request (only whether one was made: `{}`, or
-- JSON's null) nor the answers. Jobs are looked for from an hour before the page's oldest
-- event (made after it was received: the hour allows for clocks) and, for bundles, until a
-- day after its newest.
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
