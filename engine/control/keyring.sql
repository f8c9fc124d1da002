-- name: get_or_create
-- The first host to ask makes the key; every other host (and process) then reads that one.
WITH made AS (
    INSERT INTO keyring (name, value) VALUES (%(name)s, %(candidate)s)
    ON CONFLICT (name) DO NOTHING
    RETURNING value
)
SELECT value FROM made
UNION ALL
SELECT value FROM keyring WHERE name = %(name)s
LIMIT 1
