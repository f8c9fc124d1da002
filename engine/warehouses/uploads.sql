-- Warehouse loads and what the loaders know (engine/warehouses/uploads.py).

-- name: unfinished
-- This host's loads of a destination that have not finished: each is done again before its
-- source gets a new one.
SELECT id, source_id, namespace, files, attempts, status, next_attempt_at
FROM warehouse_uploads
WHERE node = %(node)s AND destination_id = %(destination)s AND status <> 'loaded'
ORDER BY id

-- name: create
INSERT INTO warehouse_uploads (destination_id, source_id, node, namespace, files, events,
                               first_event_at)
VALUES (%(destination)s, %(source)s, %(node)s, %(namespace)s, %(files)s, %(events)s,
        %(first_event_at)s)
RETURNING id

-- name: start
UPDATE warehouse_uploads
SET status = 'loading', attempts = attempts + 1, started_at = now(), error = NULL,
    next_attempt_at = NULL
WHERE id = %(id)s
RETURNING attempts

-- name: finish
UPDATE warehouse_uploads
SET status = 'loaded', finished_at = now(), tables = %(tables)s, discards = %(discards)s
WHERE id = %(id)s

-- name: fail
UPDATE warehouse_uploads
SET status = 'failed', finished_at = now(), error = %(error)s,
    next_attempt_at = now() + make_interval(secs => %(delay)s)
WHERE id = %(id)s

-- name: retry_now
UPDATE warehouse_uploads SET next_attempt_at = now()
WHERE id = %(id)s AND destination_id = %(destination)s AND status = 'failed'

-- name: save_schema
INSERT INTO warehouse_schemas (destination_id, namespace, table_name, columns)
SELECT %(destination)s, %(namespace)s, t, c
FROM unnest(%(tables)s::text[], %(columns)s::jsonb[]) AS x(t, c)
ON CONFLICT (destination_id, namespace, table_name)
DO UPDATE SET columns = EXCLUDED.columns, updated_at = now()

-- name: request_sync
INSERT INTO warehouse_syncs (destination_id) VALUES (%(destination)s)
ON CONFLICT (destination_id) DO UPDATE SET requested_at = now()

-- name: announce_sync
SELECT pg_notify('sluice_warehouse', %(destination)s::text)

-- name: sync_requested
SELECT requested_at FROM warehouse_syncs WHERE destination_id = %(destination)s

-- name: answer_sync
-- Requests made before the load started are answered by it; later ones wait for the next.
DELETE FROM warehouse_syncs
WHERE destination_id = %(destination)s AND requested_at <= %(started)s

-- name: last_started
SELECT max(started_at) FROM warehouse_uploads
WHERE node = %(node)s AND destination_id = %(destination)s

-- name: forget_staged
DELETE FROM warehouse_staged WHERE node = %(node)s

-- name: save_staged
INSERT INTO warehouse_staged (destination_id, source_id, node, files, events, oldest_event_at)
SELECT d, s, %(node)s, f, e, o
FROM unnest(%(destinations)s::uuid[], %(sources)s::uuid[], %(files)s::int[],
            %(events)s::bigint[], %(oldest)s::timestamptz[]) AS x(d, s, f, e, o)
WHERE EXISTS (SELECT FROM destinations WHERE id = d)

-- name: recent
SELECT id, source_id, namespace, node, events, status, attempts, error, tables, discards,
       created_at, started_at, finished_at, next_attempt_at, first_event_at
FROM warehouse_uploads
WHERE destination_id = %(destination)s
ORDER BY id DESC
LIMIT %(limit)s

-- name: schemas
SELECT namespace, table_name, columns FROM warehouse_schemas
WHERE destination_id = %(destination)s
ORDER BY namespace, table_name

-- name: staged
SELECT coalesce(sum(files), 0)::int AS files, coalesce(sum(events), 0)::bigint AS events,
       min(oldest_event_at) AS oldest_event_at
FROM warehouse_staged WHERE destination_id = %(destination)s

-- name: staged_by_destination
SELECT destination_id, sum(files)::int AS files, sum(events)::bigint AS events,
       min(oldest_event_at) AS oldest_event_at
FROM warehouse_staged GROUP BY destination_id

-- name: lock
-- One load of a destination at a time, whichever host runs it: they share its tables.
SELECT pg_try_advisory_lock(hashtext('sluice: warehouse ' || %(destination)s::text))

-- name: unlock
SELECT pg_advisory_unlock(hashtext('sluice: warehouse ' || %(destination)s::text))

-- name: discards
SELECT coalesce(sum(discards), 0)::bigint FROM warehouse_uploads
WHERE destination_id = %(destination)s AND status = 'loaded'
