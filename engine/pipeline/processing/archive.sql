-- name: try_lock
-- One archiver at a time (a session lock, held from reading a batch to advancing past it):
-- two would upload overlapping files, and a smaller one could replace a larger one.
SELECT pg_try_advisory_lock(hashtext('sluice: archive'))

-- name: unlock
SELECT pg_advisory_unlock(hashtext('sluice: archive'))
