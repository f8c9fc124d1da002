-- name: try_lock
-- Held by the delivering worker for as long as its connection lives.
SELECT pg_try_advisory_lock(hashtext('sluice: delivery'))

-- name: ping
SELECT 1
