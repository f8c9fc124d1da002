-- name: sources
SELECT id, name, enabled, created_at FROM sources ORDER BY name

-- name: destinations
SELECT id, name, type, enabled, created_at FROM destinations ORDER BY name

-- name: connections
SELECT c.id, c.source_id, c.destination_id, t.name AS transformation, c.enabled
FROM connections c
LEFT JOIN transformations t ON t.id = c.transformation_id
ORDER BY c.created_at

-- name: transformations
SELECT id, name FROM transformations ORDER BY name
