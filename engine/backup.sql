-- name: users
SELECT email, role, password_hash, must_change_password, disabled FROM users ORDER BY email

-- name: tokens
SELECT name, role, encode(token_hash, 'hex') AS token_hash, created_by, created_at, expires_at
FROM api_tokens ORDER BY name

-- name: restore_user
INSERT INTO users (email, role, password_hash, must_change_password, disabled)
VALUES (%(email)s, %(role)s, %(password_hash)s, %(must_change_password)s, %(disabled)s)
ON CONFLICT (email) DO UPDATE
    SET role = EXCLUDED.role, password_hash = EXCLUDED.password_hash,
        must_change_password = EXCLUDED.must_change_password, disabled = EXCLUDED.disabled,
        updated_at = now()

-- name: restore_token
INSERT INTO api_tokens (name, role, token_hash, created_by, created_at, expires_at)
VALUES (%(name)s, %(role)s, decode(%(token_hash)s, 'hex'), %(created_by)s, %(created_at)s,
        %(expires_at)s)
ON CONFLICT (name) DO UPDATE
    SET role = EXCLUDED.role, token_hash = EXCLUDED.token_hash,
        created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at,
        expires_at = EXCLUDED.expires_at

-- name: unprocessed
-- The events the processor has not read yet, in commit order.
SELECT s.name AS source, l.partition, l.received_at, l.message_id, l.payload::text AS payload
FROM ingest_log l
JOIN processor_positions p ON p.partition = l.partition
JOIN sources s ON s.id = l.source_id
WHERE (l.tx, l.id) > (p.tx, p.id)
ORDER BY l.tx, l.id

-- name: unsettled
-- The jobs no attempt settled yet (never tried, or to be retried), in commit order: every job
-- kept is read, so this takes a while on a big store.
SELECT d.name AS destination, s.name AS source, j.partition, j.user_key, j.received_at,
       j.message_id, j.event_type, j.event_name, j.request::text AS request, j.events
FROM jobs j
JOIN destinations d ON d.id = j.destination_id
JOIN sources s ON s.id = j.source_id
WHERE NOT EXISTS (
    SELECT 1 FROM job_attempts a
    WHERE a.job_id = j.id AND a.job_created_at = j.created_at AND a.state <> 'retry'
)
ORDER BY j.tx, j.id

-- name: restore_event
INSERT INTO ingest_log (source_id, partition, received_at, message_id, payload)
SELECT id, %(partition)s, %(received_at)s, %(message_id)s, %(payload)s::json
FROM sources WHERE name = %(source)s

-- name: restore_job
-- (Its event's place in the ingest log is not known here: replaying it needs the archive.)
INSERT INTO jobs (destination_id, source_id, partition, user_key, ingest_tx, ingest_id,
                  received_at, message_id, event_type, event_name, request, events)
SELECT d.id, s.id, %(partition)s, %(user_key)s, '0', 0, %(received_at)s, %(message_id)s,
       %(event_type)s, %(event_name)s, %(request)s::json, %(events)s
FROM destinations d, sources s
WHERE d.name = %(destination)s AND s.name = %(source)s

-- name: wake
SELECT pg_notify('sluice_ingest', ''), pg_notify('sluice_jobs', '')
