-- name: overview
-- Each transformation with its number of versions, when it last changed, and how many
-- connections run it.
SELECT t.id, t.name, count(DISTINCT v.id) AS versions, max(v.created_at) AS changed_at,
       (SELECT count(*) FROM connections c WHERE c.transformation_id = t.id) AS connections
FROM transformations t
LEFT JOIN transformation_versions v ON v.transformation_id = t.id
GROUP BY t.id, t.name
ORDER BY t.name

-- name: history
SELECT id, created_at, code, saved_by FROM transformation_versions
WHERE transformation_id = %(id)s
ORDER BY id DESC
LIMIT %(limit)s

-- name: code
-- A version's code, when it is one of this transformation's.
SELECT code FROM transformation_versions
WHERE id = %(version)s AND transformation_id = %(id)s

-- name: users
-- The connections that run a transformation.
SELECT c.id, s.name AS source, d.name AS destination, c.enabled
FROM connections c
JOIN sources s ON s.id = c.source_id
JOIN destinations d ON d.id = c.destination_id
WHERE c.transformation_id = %(id)s
ORDER BY s.name, d.name
