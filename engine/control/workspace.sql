-- name: upsert_source
-- Returns nothing when the source exists unchanged.
INSERT INTO sources (name, write_key, enabled, rate_limit)
VALUES (%(name)s, COALESCE(%(write_key)s, %(new_key)s), %(enabled)s, %(rate_limit)s)
ON CONFLICT (name) DO UPDATE
    SET write_key = COALESCE(%(write_key)s, sources.write_key),
        enabled = EXCLUDED.enabled,
        rate_limit = EXCLUDED.rate_limit,
        updated_at = now()
    WHERE (sources.write_key, sources.enabled, sources.rate_limit)
          IS DISTINCT FROM (COALESCE(%(write_key)s, sources.write_key), EXCLUDED.enabled,
                            EXCLUDED.rate_limit)
RETURNING (xmax = 0) AS created, write_key

-- name: upsert_destination
INSERT INTO destinations (name, type, config, enabled, delivery)
VALUES (%(name)s, %(type)s, %(config)s, %(enabled)s, %(delivery)s)
ON CONFLICT (name) DO UPDATE
    SET type = EXCLUDED.type,
        config = EXCLUDED.config,
        enabled = EXCLUDED.enabled,
        delivery = EXCLUDED.delivery,
        updated_at = now()
    WHERE (destinations.type, destinations.config, destinations.enabled, destinations.delivery)
          IS DISTINCT FROM (EXCLUDED.type, EXCLUDED.config, EXCLUDED.enabled, EXCLUDED.delivery)
RETURNING (xmax = 0) AS created

-- name: upsert_transformation
INSERT INTO transformations (name) VALUES (%(name)s)
ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
RETURNING id, (xmax = 0) AS created

-- name: add_transformation_version
-- A new version only when the code differs from the newest one.
INSERT INTO transformation_versions (transformation_id, code, saved_by)
SELECT %(id)s, %(code)s, %(author)s
WHERE %(code)s IS DISTINCT FROM (
    SELECT code FROM transformation_versions
    WHERE transformation_id = %(id)s ORDER BY id DESC LIMIT 1
)
RETURNING id

-- name: source_id
SELECT id FROM sources WHERE name = %(name)s

-- name: destination_id
SELECT id FROM destinations WHERE name = %(name)s

-- name: transformation_id
SELECT id FROM transformations WHERE name = %(name)s

-- name: upsert_connection
INSERT INTO connections (source_id, destination_id, transformation_id, enabled)
VALUES (%(source_id)s, %(destination_id)s, %(transformation_id)s, %(enabled)s)
ON CONFLICT (source_id, destination_id) DO UPDATE
    SET transformation_id = EXCLUDED.transformation_id,
        enabled = EXCLUDED.enabled
    WHERE (connections.transformation_id, connections.enabled)
          IS DISTINCT FROM (EXCLUDED.transformation_id, EXCLUDED.enabled)
RETURNING (xmax = 0) AS created

-- name: notify_changed
SELECT pg_notify('sluice_workspace', '')

-- name: export_sources
SELECT name, write_key, enabled, rate_limit FROM sources ORDER BY name

-- name: export_destinations
-- Each destination (or the one of `id`) with its alert rule, if any.
SELECT d.name, d.type, d.config, d.enabled, d.delivery,
       (SELECT jsonb_strip_nulls(jsonb_build_object(
                   'failure_percent', r.failure_percent::float8,
                   'window_minutes', r.window_minutes,
                   'silence_minutes', r.silence_minutes,
                   'webhook_url', r.webhook_url,
                   'slack_url', r.slack_url,
                   'email_to', to_jsonb(r.email_to)))
        FROM alert_rules r WHERE r.destination_id = d.id) AS alerts
FROM destinations d
WHERE %(id)s::uuid IS NULL OR d.id = %(id)s::uuid
ORDER BY d.name

-- name: export_transformations
-- Each transformation (or the one of `id`) with its newest code.
SELECT t.name, v.code
FROM transformations t
JOIN LATERAL (
    SELECT code FROM transformation_versions
    WHERE transformation_id = t.id ORDER BY id DESC LIMIT 1
) v ON true
WHERE %(id)s::uuid IS NULL OR t.id = %(id)s::uuid
ORDER BY t.name

-- name: export_connections
SELECT s.name AS source, d.name AS destination, t.name AS transformation, c.enabled
FROM connections c
JOIN sources s ON s.id = c.source_id
JOIN destinations d ON d.id = c.destination_id
LEFT JOIN transformations t ON t.id = c.transformation_id
ORDER BY s.name, d.name

-- name: source_by_id
SELECT name, write_key, enabled, rate_limit FROM sources WHERE id = %(id)s

-- name: connection_by_id
SELECT s.name AS source, d.name AS destination, t.name AS transformation, c.enabled
FROM connections c
JOIN sources s ON s.id = c.source_id
JOIN destinations d ON d.id = c.destination_id
LEFT JOIN transformations t ON t.id = c.transformation_id
WHERE c.id = %(id)s

-- name: delete_source
DELETE FROM sources WHERE name = %(name)s RETURNING id

-- name: delete_destination
DELETE FROM destinations WHERE name = %(name)s RETURNING id

-- name: delete_transformation
DELETE FROM transformations WHERE name = %(name)s RETURNING id

-- name: transformation_users
SELECT s.name || ' → ' || d.name
FROM connections c
JOIN transformations t ON t.id = c.transformation_id
JOIN sources s ON s.id = c.source_id
JOIN destinations d ON d.id = c.destination_id
WHERE t.name = %(name)s
ORDER BY 1

-- name: delete_connection
DELETE FROM connections c
USING sources s, destinations d
WHERE c.source_id = s.id AND c.destination_id = d.id
  AND s.name = %(source)s AND d.name = %(destination)s
RETURNING c.id
