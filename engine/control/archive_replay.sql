-- name: source
SELECT id FROM sources WHERE name = %(name)s
