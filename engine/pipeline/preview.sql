-- name: destination
SELECT id, name, type, config, delivery, enabled FROM destinations WHERE name = %(name)s
