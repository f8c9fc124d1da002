-- name: get
SELECT value FROM settings WHERE name = %(name)s

-- name: put
INSERT INTO settings (name, value) VALUES (%(name)s, %(value)s)
ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value

-- name: remove
DELETE FROM settings WHERE name = %(name)s
