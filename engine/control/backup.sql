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
