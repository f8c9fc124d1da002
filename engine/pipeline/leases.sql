-- name: present
INSERT INTO lease_holders (stage, holder) VALUES (%(stage)s, %(holder)s)
ON CONFLICT (stage, holder) DO UPDATE SET seen_at = now()

-- name: holders
-- The workers taking part in the stage: seen within the lease time, in order.
SELECT holder FROM lease_holders
WHERE stage = %(stage)s AND seen_at > now() - %(ttl)s::interval
ORDER BY holder

-- name: renew
-- (Rows are locked in partition order here and in `check`: two transactions taking them in
-- different orders could deadlock.) A renewal changes no holder: its lock (NO KEY UPDATE) and
-- `check`'s (KEY SHARE) do not wait for each other, so a renewal never waits for work being
-- committed; claiming, releasing and leaving change holders and lock the rows FOR UPDATE, which
-- waits for (or skips) the `check`s in progress, renewed rows' included (PostgreSQL keeps a
-- KEY SHARE lock on the row's new version when an update leaves its key alone).
UPDATE leases SET expires_at = clock_timestamp() + %(ttl)s::interval
WHERE (stage, partition) IN (
    SELECT stage, partition FROM leases
    WHERE stage = %(stage)s AND holder = %(holder)s AND expires_at > now()
    ORDER BY partition
    FOR NO KEY UPDATE
)
RETURNING partition

-- name: claim
-- Free or expired partitions, up to `wanted` of them, lowest first; each says whether it was
-- taken over from a holder whose lease expired (rather than one that gave it up).
WITH free AS (
    SELECT stage, partition, holder IS NOT NULL AS expired FROM leases
    WHERE stage = %(stage)s AND (holder IS NULL OR expires_at <= clock_timestamp())
    ORDER BY partition
    LIMIT %(wanted)s
    FOR UPDATE SKIP LOCKED
)
UPDATE leases l SET holder = %(holder)s, epoch = l.epoch + 1,
                    expires_at = clock_timestamp() + %(ttl)s::interval
FROM free
WHERE l.stage = free.stage AND l.partition = free.partition
RETURNING l.partition, free.expired

-- name: release
UPDATE leases SET holder = NULL, expires_at = '-infinity'
WHERE (stage, partition) IN (
    SELECT stage, partition FROM leases
    WHERE stage = %(stage)s AND holder = %(holder)s AND partition = ANY(%(partitions)s)
    ORDER BY partition
    FOR UPDATE
)

-- name: leave
WITH gone AS (DELETE FROM lease_holders WHERE stage = %(stage)s AND holder = %(holder)s)
UPDATE leases SET holder = NULL, expires_at = '-infinity'
WHERE (stage, partition) IN (
    SELECT stage, partition FROM leases
    WHERE stage = %(stage)s AND holder = %(holder)s
    ORDER BY partition
    FOR UPDATE
)

-- name: forget
DELETE FROM lease_holders WHERE seen_at < now() - interval '1 day'

-- name: check
-- In the transaction that commits work on these partitions: still this worker's, now (not as
-- of the transaction's start: it is best checked just before the commit)? The rows stay locked
-- until the commit, so no one takes them over meanwhile (see `renew`).
SELECT partition FROM leases
WHERE stage = %(stage)s AND holder = %(holder)s AND partition = ANY(%(partitions)s)
  AND expires_at > clock_timestamp()
ORDER BY partition
FOR KEY SHARE

-- name: holdings
-- Who works which partitions now, per stage, and — for processing — when the event its
-- furthest-behind partition stands at was received.
SELECT l.stage, l.holder, array_agg(l.partition ORDER BY l.partition) AS partitions,
       min(e.received_at) AS behind_since
FROM leases l
LEFT JOIN processor_positions p ON l.stage = 'process' AND p.partition = l.partition
LEFT JOIN ingested e ON e.tx = p.tx AND e.id = p.id
WHERE l.holder IS NOT NULL AND l.expires_at > now()
GROUP BY l.stage, l.holder
ORDER BY l.stage, l.holder
