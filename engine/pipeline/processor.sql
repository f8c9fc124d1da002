-- name: lock_positions
-- Held until commit: whoever holds a partition's position row is its only processor.
SELECT partition, tx::text, id FROM processor_positions
WHERE partition = ANY(%(partitions)s) ORDER BY partition FOR UPDATE

-- name: read
-- In commit order: only rows of transactions older than every running one, so no row can
-- later appear before the position this batch advances to.
SELECT id, tx::text, partition, source_id, received_at, message_id, payload::text
FROM ingest_log
WHERE (tx, id) > (%(tx)s::text::xid8, %(id)s)
  AND tx < pg_snapshot_xmin(pg_current_snapshot())
  AND partition = ANY(%(partitions)s)
ORDER BY tx, id
LIMIT %(limit)s

-- name: duplicates
-- Events of the batch whose messageId the same source already sent within the window.
SELECT DISTINCT b.source_id, b.message_id
FROM unnest(%(sources)s::uuid[], %(messages)s::text[], %(received)s::timestamptz[])
     AS b(source_id, message_id, received_at)
JOIN ingest_log l
  ON l.message_id = b.message_id AND l.source_id = b.source_id
 AND l.received_at > b.received_at - %(window)s::interval
WHERE (l.tx, l.id) < (%(tx)s::text::xid8, %(id)s)
  AND l.received_at > %(oldest)s::timestamptz - %(window)s::interval

-- name: advance
UPDATE processor_positions SET tx = %(tx)s::text::xid8, id = %(id)s
WHERE partition = ANY(%(partitions)s) AND (tx, id) < (%(tx)s::text::xid8, %(id)s)
