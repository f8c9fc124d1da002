-- name: now
SELECT clock_timestamp()
