-- How far each spool file (host/name) has been moved into the ingest log.

-- name: drained
SELECT drained FROM gateway_spool WHERE file = %(file)s

-- name: advance
INSERT INTO gateway_spool (file, drained) VALUES (%(file)s, %(drained)s)
ON CONFLICT (file) DO UPDATE SET drained = EXCLUDED.drained, updated_at = now()

-- name: forget
DELETE FROM gateway_spool WHERE file = %(file)s
