-- name: clear
DELETE FROM backlogs WHERE host = %(host)s AND pid = %(pid)s

-- name: publish
INSERT INTO backlogs (host, pid, destination_id, jobs, events, retrying, oldest_at, unread)
VALUES (%(host)s, %(pid)s, %(destination)s, %(jobs)s, %(events)s, %(retrying)s, %(oldest_at)s,
        %(unread)s)

-- name: forget
-- Rows of workers that died without clearing theirs.
DELETE FROM backlogs WHERE seen_at < now() - interval '1 day'

-- name: current
-- Every live worker's share, per destination.
SELECT destination_id, sum(jobs)::bigint, sum(events)::bigint, sum(retrying)::bigint,
       min(oldest_at), sum(unread)::bigint
FROM backlogs
WHERE seen_at > now() - %(alive)s::interval
GROUP BY destination_id
