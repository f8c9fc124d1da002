-- The ingest log (every accepted event, as the gateway stored it), the message ids the processor
-- has seen, and the processor's and the archive's positions in the log: every statement on
-- these tables. The gateway appends to `ingest_events`; `ingested` is it and the log of older
-- versions (`ingest_log`), read as one (0021).

-- name: copy_rows
-- The gateway's commits: COPY's binary format (engine/store/ingest_log.py, `copy_binary`).
COPY ingest_events (source_id, received_at, partition, message_id, payload)
FROM STDIN (FORMAT binary)

-- name: copy_rows_for_older_readers
-- (while a worker of a version before 0021 runs: engine/gateway/log_table.py)
COPY ingest_log (source_id, received_at, partition, message_id, payload)
FROM STDIN (FORMAT binary)

-- name: copy_text_rows
-- The gateway's spool (engine/gateway/spool.py): COPY's text format, a row per line.
COPY ingest_events (source_id, partition, received_at, message_id, payload) FROM STDIN

-- name: copy_text_rows_for_older_readers
COPY ingest_log (source_id, partition, received_at, message_id, payload) FROM STDIN

-- name: notify
SELECT pg_notify('sluice_ingest', '')

-- name: announce
-- One round trip (no parameters: the simple query protocol takes several statements).
BEGIN;
SET LOCAL synchronous_commit = off;
SELECT pg_notify('sluice_ingest', '');
COMMIT

-- name: read
-- In commit order (see engine/position.py): only rows of transactions older than every
-- running one, so no row can later appear before the position a batch advances to. Read
-- again from the same positions, a batch starts with the same rows.
-- The position is given as sub-selects (values at run time, to the planner) so that the rows
-- past it are reckoned a share of the log's present size, never from the statistics of the
-- (tx, id) values: a growing log outruns those (a backlog grows past the last ANALYZE), and
-- from them the planner reckoned 200 rows where there were 67,000, and sorted them all (on
-- disk, 100 ms) for every batch instead of reading the (tx, id) indexes in order (2 ms).
SELECT l.id, l.tx::text, l.partition, l.source_id, l.received_at, l.message_id,
       l.payload::text
FROM ingested l
WHERE (l.tx, l.id) > ((SELECT %(tx)s::text::xid8), (SELECT %(id)s::bigint))
  AND l.tx < pg_snapshot_xmin(pg_current_snapshot())
  AND l.partition = ANY(%(partitions)s)
ORDER BY l.tx, l.id
LIMIT %(limit)s

-- name: seen
-- The processor's batch from `first` to `last` (the rows of `partitions` between them: every one
-- written by a transaction older than any running when the batch was read, so exactly the rows
-- it read), less those at or before their partition's position (locked by the processor): which
-- come after an earlier event of their source and user partition with the same messageId,
-- within the window: one the processor has seen (`seen_messages`), or one an older version
-- wrote to `ingest_log` (whose message index finds it, in any partition, as that version did).
-- Their message ids are kept at once, for the batches to come (the look-ups see what had
-- committed when the statement began, not these). The answer depends on what has committed
-- alone, so a batch read again after a crash gets the same one. (The earlier events of the batch
-- itself the processor looks up in hand.) The batch is read here rather than sent: building
-- six arrays of its values was a quarter of the processor's CPU.
WITH batch AS MATERIALIZED (
    SELECT l.id, l.tx, l.partition, l.source_id, l.received_at, l.message_id
    FROM ingested l JOIN processor_positions p ON p.partition = l.partition
    -- (Bounds as values, unlike `read`'s: a range this short is best read by the (tx, id)
    -- indexes whatever is reckoned of it, and reckoned as an unknown share of the log it was
    -- read by scanning the whole day, a batch after another: most of PostgreSQL's time under
    -- a backlog of 60,000 events in bench.e2e.)
    WHERE (l.tx, l.id) >= (%(first_tx)s::text::xid8, %(first_id)s::bigint)
      AND (l.tx, l.id) <= (%(last_tx)s::text::xid8, %(last_id)s::bigint)
      AND l.partition = ANY(%(partitions)s)
      AND (l.tx, l.id) > (p.tx, p.id)
), kept AS (
    INSERT INTO seen_messages (partition, source_id, received_at, message_id)
    SELECT partition, source_id, received_at, message_id FROM batch
)
SELECT e.id
FROM batch e
WHERE EXISTS (
    SELECT 1 FROM seen_messages s
    WHERE hashtext(s.message_id) = hashtext(e.message_id)  -- (the index)
      AND s.message_id = e.message_id AND s.source_id = e.source_id
      AND s.partition = e.partition
      -- Both bounds, so that run-time pruning skips the other days' partitions.
      AND s.received_at > e.received_at - %(window)s::interval
      AND s.received_at < e.received_at + %(window)s::interval)
   OR EXISTS (
    -- OFFSET 0 keeps the order comparison out of the inner scan, which must find rows
    -- by messageId alone (not walk the whole log through the (tx, id) index).
    SELECT 1
    FROM (SELECT d.tx, d.id FROM ingest_log d
          WHERE hashtext(d.message_id) = hashtext(e.message_id)  -- (the index: 0016)
            AND d.message_id = e.message_id AND d.source_id = e.source_id
            AND d.received_at > e.received_at - %(window)s::interval
            AND d.received_at < e.received_at + %(window)s::interval
          OFFSET 0) earlier
    WHERE (earlier.tx, earlier.id) < (e.tx, e.id))

-- name: lock_processor_positions
-- Held until commit: whoever holds a partition's position row is its only processor.
SELECT partition, tx::text, id FROM processor_positions
WHERE partition = ANY(%(partitions)s) ORDER BY partition FOR UPDATE

-- name: advance_processor
UPDATE processor_positions SET tx = %(tx)s::text::xid8, id = %(id)s
WHERE partition = ANY(%(partitions)s) AND (tx, id) < (%(tx)s::text::xid8, %(id)s)

-- name: archive_positions
SELECT partition, tx::text, id FROM archive_positions WHERE partition = ANY(%(partitions)s)

-- name: advance_archive
UPDATE archive_positions SET tx = %(tx)s::text::xid8, id = %(id)s
WHERE partition = ANY(%(partitions)s) AND (tx, id) < (%(tx)s::text::xid8, %(id)s)

-- name: events
SELECT id, payload::text, received_at, message_id FROM ingested
WHERE (tx, id) IN (SELECT * FROM unnest(%(txs)s::text[]::xid8[], %(ids)s::bigint[]))

-- name: columns
l.id, l.tx::text AS tx, l.source_id, l.partition, l.received_at, l.message_id,
l.payload->>'type' AS type, coalesce(l.payload->>'event', l.payload->>'name') AS name,
l.payload->>'userId' AS user_id, l.payload->>'anonymousId' AS anonymous_id,
l.payload::text AS payload

-- name: walk
-- At most `scan` events walked back from a point, in commit order (the processor's: the
-- (tx, id) indexes of every day partition of both tables, read backwards and merged), so that
-- a filter matching nothing never reads the whole log. Only rows every older transaction has
-- finished before are taken, so that a page asking for what came after its newest row never
-- skips one that committed late.
SELECT * FROM ingested
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
  AND (%(path)s::text[] IS NULL OR l.payload #>> %(path)s::text[] = %(value)s::text)
  -- (strpos on lowered text, not ILIKE: the searched text's wildcards mean themselves)
  AND (%(text)s::text IS NULL OR l.message_id = %(text)s::text
       OR strpos(lower(l.payload::text), lower(%(text)s::text)) > 0)
ORDER BY l.tx DESC, l.id DESC
LIMIT %(limit)s

-- name: walked
-- Where the walk ends (the next page of a search starts there), and how many it went
-- through (fewer than `scan`: it reached the oldest), and when its last was received.
SELECT w.tx::text, w.id, count(*) OVER (), w.received_at FROM ({walk}) w
ORDER BY w.tx, w.id
LIMIT 1

-- name: event
SELECT {columns}
FROM ingested l
WHERE l.tx = %(tx)s::xid8 AND l.id = %(id)s
  AND (%(at)s::timestamptz IS NULL OR l.received_at = %(at)s::timestamptz)

-- name: listed
-- Events by position, in the order given (a page's rows, read again): each found through its
-- day partitions' (tx, id) indexes.
SELECT {columns}
FROM unnest(%(txs)s::text[]::xid8[], %(ids)s::bigint[]) WITH ORDINALITY AS p(tx, id, i)
JOIN LATERAL (SELECT * FROM ingested WHERE tx = p.tx AND id = p.id) l ON true
ORDER BY p.i

-- name: processor_positions
SELECT partition, tx::text, id FROM processor_positions

-- name: processed
-- Has the processor read past the event (in its partition's commit order)?
SELECT (%(tx)s::xid8, %(id)s::bigint) <= (p.tx, p.id)
FROM processor_positions p WHERE p.partition = %(partition)s

-- name: processing
-- The newest stored event's receipt time, and the newest the processor has read past (each
-- partition's position is a row of the log: 64 index lookups).
SELECT (SELECT received_at FROM ingested
        WHERE tx < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY tx DESC, id DESC LIMIT 1),
       (SELECT max(l.received_at) FROM processor_positions p
        JOIN ingested l ON l.tx = p.tx AND l.id = p.id)

-- name: unprocessed
-- The events the processor has not read yet, in commit order.
SELECT s.name AS source, l.partition, l.received_at, l.message_id, l.payload::text AS payload
FROM ingested l
JOIN processor_positions p ON p.partition = l.partition
JOIN sources s ON s.id = l.source_id
WHERE (l.tx, l.id) > (p.tx, p.id)
ORDER BY l.tx, l.id

-- name: restore
INSERT INTO ingest_events (source_id, partition, received_at, message_id, payload)
SELECT id, %(partition)s, %(received_at)s, %(message_id)s, %(payload)s::json
FROM sources WHERE name = %(source)s

-- name: unread_before
-- Any event received before `until` that the processor has not read yet? (Only the days
-- before it are looked in.)
SELECT EXISTS (
    SELECT 1 FROM ingested l JOIN processor_positions p ON p.partition = l.partition
    WHERE l.received_at < %(until)s AND (l.tx, l.id) > (p.tx, p.id))

-- name: unprocessed_in
-- Any row of this ingest log partition the processor has not read yet?
SELECT EXISTS (
    SELECT 1 FROM {partition} l,
         (SELECT tx, id FROM processor_positions ORDER BY tx, id LIMIT 1) m
    WHERE (l.tx, l.id) > (m.tx, m.id))
