-- name: create
INSERT INTO users (email, role, password_hash, must_change_password)
VALUES (%(email)s, %(role)s, %(password_hash)s, %(must_change)s)
ON CONFLICT (email) DO NOTHING
RETURNING id, email, role, must_change_password, disabled, created_at, last_login_at

-- name: by_email
SELECT id, email, role, must_change_password, disabled, created_at, last_login_at,
       password_hash
FROM users WHERE email = %(email)s

-- name: by_id
SELECT id, email, role, must_change_password, disabled, created_at, last_login_at
FROM users WHERE id = %(id)s

-- name: all
SELECT id, email, role, must_change_password, disabled, created_at, last_login_at
FROM users ORDER BY email

-- name: count
SELECT count(*) FROM users

-- name: lock_sign_ins
-- One sign-in at a time per email and per client, until the transaction that records its
-- failure ends: tries sent at once cannot all count the failures before any is recorded. (The
-- email's lock always first: locks taken in one order cannot deadlock. No client: no lock.)
SELECT pg_advisory_xact_lock(hashtextextended('sluice sign-in, email ' || %(email)s, 0)),
       pg_advisory_xact_lock(hashtextextended('sluice sign-in, client ' || %(client)s::text, 0))

-- name: recent_failures
-- Failed sign-ins within the throttle window: for this email from this client, from this
-- client, for this email; and when the oldest of each happened.
SELECT count(*) FILTER (WHERE email = %(email)s AND client IS NOT DISTINCT FROM %(client)s::inet),
       count(*) FILTER (WHERE client = %(client)s::inet),
       count(*) FILTER (WHERE email = %(email)s),
       min(at) FILTER (WHERE email = %(email)s AND client IS NOT DISTINCT FROM %(client)s::inet),
       min(at) FILTER (WHERE client = %(client)s::inet),
       min(at) FILTER (WHERE email = %(email)s),
       now()
FROM login_failures
WHERE at > now() - %(window)s::interval
  AND (email = %(email)s OR client = %(client)s::inet)

-- name: record_failure
INSERT INTO login_failures (email, client) VALUES (%(email)s, %(client)s::inet)

-- name: forget_failures
-- A successful sign-in clears the account's count (not the client's: one good password must
-- not reset a guessing spree across other accounts).
DELETE FROM login_failures WHERE email = %(email)s

-- name: expire_failures
DELETE FROM login_failures WHERE at < now() - %(window)s::interval

-- name: signed_in
UPDATE users SET last_login_at = now() WHERE id = %(id)s

-- name: set_password
UPDATE users
SET password_hash = %(password_hash)s, must_change_password = %(must_change)s, updated_at = now()
WHERE id = %(id)s
RETURNING id

-- name: rehash
UPDATE users SET password_hash = %(password_hash)s WHERE id = %(id)s

-- name: lock_admins
-- Changes that could leave no admin take this first, so two of them cannot both pass the check.
SELECT pg_advisory_xact_lock(hashtext('sluice: admins'))

-- name: other_active_admins
SELECT count(*) FROM users
WHERE role = 'admin' AND NOT disabled AND id <> %(id)s

-- name: update
UPDATE users
SET role = %(role)s, disabled = %(disabled)s, updated_at = now()
WHERE id = %(id)s
RETURNING id, email, role, must_change_password, disabled, created_at, last_login_at

-- name: kept
-- Everyone, as a backup keeps them.
SELECT email, role, password_hash, must_change_password, disabled FROM users ORDER BY email

-- name: restore
INSERT INTO users (email, role, password_hash, must_change_password, disabled)
VALUES (%(email)s, %(role)s, %(password_hash)s, %(must_change_password)s, %(disabled)s)
ON CONFLICT (email) DO UPDATE
    SET role = EXCLUDED.role, password_hash = EXCLUDED.password_hash,
        must_change_password = EXCLUDED.must_change_password, disabled = EXCLUDED.disabled,
        updated_at = now()
