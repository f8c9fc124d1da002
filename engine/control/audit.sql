-- name: record
INSERT INTO audit_log (actor, action, target, detail, before, after)
VALUES (%(actor)s, %(action)s, %(target)s, %(detail)s, %(before)s, %(after)s)

-- name: search
-- Newest first, a page at a time (`before`: the last id of the page before); each filter left
-- NULL is off. `what` matches the action (`destination.update`) or its kind (`destination`).
SELECT id, at, actor, action, target, detail, before, after FROM audit_log
WHERE (%(before_id)s::bigint IS NULL OR id < %(before_id)s::bigint)
  AND (%(actor)s::text IS NULL OR actor = %(actor)s::text)
  AND (%(what)s::text IS NULL OR action = %(what)s::text
       OR split_part(action, '.', 1) = %(what)s::text)
  AND (%(since)s::timestamptz IS NULL OR at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR at < %(until)s::timestamptz)
ORDER BY id DESC
LIMIT %(limit)s
