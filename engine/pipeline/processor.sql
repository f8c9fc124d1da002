-- name: lock_positions
-- Held until commit: whoever holds a partition's position row is its only processor.
SELECT partition, tx::text, id FROM processor_positions
WHERE partition = ANY(%(partitions)s) ORDER BY partition FOR UPDATE

-- name: read
-- In commit order: only rows of transactions older than every running one, so no row can
-- later appear before the position this batch advances to. A row is a duplicate when an
-- earlier one (in that same order) from the same source has its messageId within the window:
-- the answer depends on the log alone, so a batch read again after a crash gets the same one.
SELECT l.id, l.tx::text, l.partition, l.source_id, l.received_at, l.message_id,
       l.payload::text,
       %(window)s::interval > '0' AND EXISTS (
           -- OFFSET 0 keeps the order comparison out of the inner scan, which must find rows
           -- by messageId alone (not walk the whole log through the (tx, id) index).
           SELECT 1
           FROM (SELECT d.tx, d.id FROM ingest_log d
                 WHERE d.message_id = l.message_id AND d.source_id = l.source_id
                   -- Both bounds, so that run-time pruning skips the other days' partitions
                   -- (a row committed earlier yet received a whole window later means a clock jump).
                   AND d.received_at > l.received_at - %(window)s::interval
                   AND d.received_at < l.received_at + %(window)s::interval
                 OFFSET 0) earlier
           WHERE (earlier.tx, earlier.id) < (l.tx, l.id)
       ) AS duplicate
FROM ingest_log l
WHERE (l.tx, l.id) > (%(tx)s::text::xid8, %(id)s)
  AND l.tx < pg_snapshot_xmin(pg_current_snapshot())
  AND l.partition = ANY(%(partitions)s)
ORDER BY l.tx, l.id
LIMIT %(limit)s

-- name: advance
UPDATE processor_positions SET tx = %(tx)s::text::xid8, id = %(id)s
WHERE partition = ANY(%(partitions)s) AND (tx, id) < (%(tx)s::text::xid8, %(id)s)
