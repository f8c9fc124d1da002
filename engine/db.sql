-- Statements of engine/db.py.

-- name: apply_settings
-- A pool's session settings (`connection_pool`): only those no one has given a value, neither
-- the server's configuration (its file, the database's, the role's) nor the connection (a URL's
-- `options`, PGOPTIONS).
SELECT set_config(s.name, v.setting, false)
FROM unnest(%(names)s::text[], %(settings)s::text[]) AS v(name, setting)
JOIN pg_settings s ON s.name = v.name
WHERE s.source = 'default'
