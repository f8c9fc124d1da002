-- name: destinations
SELECT id, name, type, config, delivery, enabled FROM destinations

-- name: connections
-- Enabled connections with the newest version of their transformation, if any.
SELECT c.source_id, c.destination_id, c.transformation_id,
       (SELECT v.id FROM transformation_versions v
        WHERE v.transformation_id = c.transformation_id
        ORDER BY v.id DESC LIMIT 1) AS transformation_version
FROM connections c
JOIN sources s ON s.id = c.source_id
WHERE c.enabled

-- name: destination
SELECT id, name, type, config, delivery, enabled FROM destinations WHERE name = %(name)s

-- name: sources
SELECT id, name FROM sources
