-- name: create
INSERT INTO web_sessions (token_hash, user_id, expires_at)
VALUES (%(token_hash)s, %(user_id)s, now() + %(idle)s::interval)

-- name: user
-- The session's user, if the session is current and the account enabled; the session is
-- extended (sliding expiry) at most once a minute, to keep page views from writing, and not
-- by what a page fetches by itself (`touch` false), so an open tab alone never keeps it.
WITH s AS (
    SELECT user_id, last_seen_at FROM web_sessions
    WHERE token_hash = %(token_hash)s AND expires_at > now()
), touched AS (
    UPDATE web_sessions
    SET last_seen_at = now(),
        expires_at = LEAST(now() + %(idle)s::interval, created_at + %(lifetime)s::interval)
    WHERE token_hash = %(token_hash)s AND %(touch)s
      AND (SELECT last_seen_at FROM s) < now() - interval '1 minute'
)
SELECT u.id, u.email, u.role, u.must_change_password, u.disabled, u.created_at,
       u.last_login_at
FROM s JOIN users u ON u.id = s.user_id
WHERE NOT u.disabled

-- name: end
DELETE FROM web_sessions WHERE token_hash = %(token_hash)s

-- name: end_all
-- Every session of a user but the one kept (a password change signs out other browsers).
DELETE FROM web_sessions
WHERE user_id = %(user_id)s AND token_hash IS DISTINCT FROM %(keep)s

-- name: expire
DELETE FROM web_sessions WHERE expires_at < now()
