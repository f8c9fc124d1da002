-- name: copy_rows
COPY ingest_log (source_id, partition, received_at, message_id, payload) FROM STDIN

-- name: ping
SELECT 1

-- name: notify
SELECT pg_notify('sluice_ingest', '')
