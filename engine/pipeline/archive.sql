-- name: try_lock
-- One archiver at a time (a session lock, held from reading a batch to advancing past it):
-- two would upload overlapping files, and a smaller one could replace a larger one.
SELECT pg_try_advisory_lock(hashtext('sluice: archive'))

-- name: unlock
SELECT pg_advisory_unlock(hashtext('sluice: archive'))

-- name: positions
SELECT partition, tx::text, id FROM archive_positions WHERE partition = ANY(%(partitions)s)

-- name: read
-- In commit order, as the processor reads (see processor.sql): a batch read again from the
-- same positions starts with the same rows.
SELECT l.id, l.tx::text, l.partition, l.source_id, l.received_at, l.payload::text
FROM ingest_log l
WHERE (l.tx, l.id) > (%(tx)s::text::xid8, %(id)s)
  AND l.tx < pg_snapshot_xmin(pg_current_snapshot())
  AND l.partition = ANY(%(partitions)s)
ORDER BY l.tx, l.id
LIMIT %(limit)s

-- name: advance
UPDATE archive_positions SET tx = %(tx)s::text::xid8, id = %(id)s
WHERE partition = ANY(%(partitions)s) AND (tx, id) < (%(tx)s::text::xid8, %(id)s)
