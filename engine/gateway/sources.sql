-- name: all_sources
SELECT id::text, name, write_key, enabled, rate_limit FROM sources
