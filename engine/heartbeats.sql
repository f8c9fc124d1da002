-- name: beat
INSERT INTO heartbeats (host, pid, role, started_at, report)
VALUES (%(host)s, %(pid)s, %(role)s, %(started_at)s, %(report)s)
ON CONFLICT (host, pid, role)
DO UPDATE SET seen_at = now(), started_at = EXCLUDED.started_at, report = EXCLUDED.report

-- name: gone
DELETE FROM heartbeats WHERE host = %(host)s AND pid = %(pid)s AND role = %(role)s

-- name: recent
-- The processes heard from within the window (older rows are of processes that died without
-- saying so; they are forgotten after a day).
SELECT host, pid, role, started_at, seen_at, seen_at > now() - %(alive)s::interval AS alive,
       report
FROM heartbeats
WHERE seen_at > now() - interval '1 day'
ORDER BY role, host, pid

-- name: forget
DELETE FROM heartbeats WHERE seen_at < now() - interval '1 day'
