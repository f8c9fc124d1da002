-- name: destinations
-- Each with the settings it had before (their secrets are masked in jobs made under them).
SELECT d.id, d.name, d.type, d.config, d.delivery, d.enabled,
       coalesce((SELECT jsonb_agg(r.config ORDER BY r.retired_at)
                 FROM destination_settings_retired r WHERE r.destination_id = d.id), '[]')
           AS retired
FROM destinations d

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
SELECT * FROM ({destinations}) d WHERE d.name = %(name)s

-- name: sources
SELECT id, name FROM sources
