-- name: record
INSERT INTO audit_log (actor, action, target, detail)
VALUES (%(actor)s, %(action)s, %(target)s, %(detail)s)

-- name: recent
SELECT id, at, actor, action, target, detail FROM audit_log
WHERE (%(before)s::bigint IS NULL OR id < %(before)s::bigint)
ORDER BY id DESC
LIMIT %(limit)s
