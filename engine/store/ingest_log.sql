-- The ingest log (every accepted event, as the gateway stored it) and the processor's and the
-- archive's positions in it: every statement on these tables.

-- name: copy_rows
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
SELECT l.id, l.tx::text, l.partition, l.source_id, l.received_at, l.message_id,
       l.payload::text,
       {duplicate} AS duplicate
FROM ingest_log l
WHERE (l.tx, l.id) > (%(tx)s::text::xid8, %(id)s)
  AND l.tx < pg_snapshot_xmin(pg_current_snapshot())
  AND l.partition = ANY(%(partitions)s)
ORDER BY l.tx, l.id
LIMIT %(limit)s

-- name: duplicate
-- A row is a duplicate when an earlier one (in commit order) from the same source has its
-- messageId within the window: the answer depends on the log alone, so a batch read again
-- after a crash gets the same one.
%(window)s::interval > '0' AND EXISTS (
    -- OFFSET 0 keeps the order comparison out of the inner scan, which must find rows
    -- by messageId alone (not walk the whole log through the (tx, id) index).
    SELECT 1
    FROM (SELECT d.tx, d.id FROM ingest_log d
          WHERE hashtext(d.message_id) = hashtext(l.message_id)  -- (the index: 0016)
            AND d.message_id = l.message_id AND d.source_id = l.source_id
            -- Both bounds, so that run-time pruning skips the other days' partitions
            -- (a row committed earlier yet received a whole window later means a clock jump).
            AND d.received_at > l.received_at - %(window)s::interval
            AND d.received_at < l.received_at + %(window)s::interval
          OFFSET 0) earlier
    WHERE (earlier.tx, earlier.id) < (l.tx, l.id)
)

-- name: not_checked
-- (the archive keeps duplicates as they came)
false

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
SELECT id, payload::text, received_at, message_id FROM ingest_log
WHERE (tx, id) IN (SELECT * FROM unnest(%(txs)s::text[]::xid8[], %(ids)s::bigint[]))

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

-- name: processing
-- The newest stored event's receipt time, and the newest the processor has read past (each
-- partition's position is a row of the log: 64 index lookups).
SELECT (SELECT received_at FROM ingest_log
        WHERE tx < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY tx DESC, id DESC LIMIT 1),
       (SELECT max(l.received_at) FROM processor_positions p
        JOIN ingest_log l ON l.tx = p.tx AND l.id = p.id)

-- name: unprocessed
-- The events the processor has not read yet, in commit order.
SELECT s.name AS source, l.partition, l.received_at, l.message_id, l.payload::text AS payload
FROM ingest_log l
JOIN processor_positions p ON p.partition = l.partition
JOIN sources s ON s.id = l.source_id
WHERE (l.tx, l.id) > (p.tx, p.id)
ORDER BY l.tx, l.id

-- name: restore
INSERT INTO ingest_log (source_id, partition, received_at, message_id, payload)
SELECT id, %(partition)s, %(received_at)s, %(message_id)s, %(payload)s::json
FROM sources WHERE name = %(source)s

-- name: unprocessed_in
-- Any row of this ingest log partition the processor has not read yet?
SELECT EXISTS (
    SELECT 1 FROM {partition} l,
         (SELECT tx, id FROM processor_positions ORDER BY tx, id LIMIT 1) m
    WHERE (l.tx, l.id) > (m.tx, m.id))
