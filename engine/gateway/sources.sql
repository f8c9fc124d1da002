-- name: all_sources
SELECT id::text, name, write_key, enabled, rate_limit FROM sources

-- name: listen
LISTEN sluice_workspace
