-- name: processing
-- The newest stored event's receipt time, and the newest the processor has read past (each
-- partition's position is a row of the log: 64 index lookups).
SELECT (SELECT received_at FROM ingest_log
        WHERE tx < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY tx DESC, id DESC LIMIT 1),
       (SELECT max(l.received_at) FROM processor_positions p
        JOIN ingest_log l ON l.tx = p.tx AND l.id = p.id)

-- name: size
SELECT pg_database_size(current_database())
