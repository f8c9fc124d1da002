-- name: create
INSERT INTO api_tokens (name, role, token_hash, created_by, expires_at)
VALUES (%(name)s, %(role)s, %(token_hash)s, %(created_by)s, now() + %(lifetime)s::interval)
ON CONFLICT (name) DO NOTHING
RETURNING id, name, role, created_by, created_at, last_used_at, expires_at

-- name: verify
-- A token that has not expired; noting the use at most once a minute, to keep reads from
-- writing.
WITH t AS (
    SELECT id, name, role, created_by, created_at, last_used_at, expires_at FROM api_tokens
    WHERE token_hash = %(token_hash)s AND coalesce(expires_at > now(), true)
), used AS (
    UPDATE api_tokens SET last_used_at = now()
    WHERE token_hash = %(token_hash)s
      AND (SELECT id FROM t) IS NOT NULL
      AND coalesce((SELECT last_used_at FROM t), '-infinity') < now() - interval '1 minute'
)
SELECT * FROM t

-- name: all
SELECT id, name, role, created_by, created_at, last_used_at, expires_at
FROM api_tokens ORDER BY name

-- name: revoke
DELETE FROM api_tokens WHERE id = %(id)s RETURNING name

-- name: kept
-- Every token, as a backup keeps it.
SELECT name, role, encode(token_hash, 'hex') AS token_hash, created_by, created_at, expires_at
FROM api_tokens ORDER BY name

-- name: restore
INSERT INTO api_tokens (name, role, token_hash, created_by, created_at, expires_at)
VALUES (%(name)s, %(role)s, decode(%(token_hash)s, 'hex'), %(created_by)s, %(created_at)s,
        %(expires_at)s)
ON CONFLICT (name) DO UPDATE
    SET role = EXCLUDED.role, token_hash = EXCLUDED.token_hash,
        created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at,
        expires_at = EXCLUDED.expires_at
