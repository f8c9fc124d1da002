-- Messages the gateway refused: every statement on gateway_rejections.

-- name: append
INSERT INTO gateway_rejections (received_at, source_id, reason, bytes, head)
SELECT r.received_at, r.source_id, r.reason, r.bytes, r.head
FROM unnest(%(received_at)s::timestamptz[], %(source_id)s::uuid[], %(reason)s::text[],
            %(bytes)s::integer[], %(head)s::text[]) AS r(received_at, source_id, reason, bytes, head)
-- (a source deleted meanwhile: its rejections go with it)
WHERE EXISTS (SELECT 1 FROM sources s WHERE s.id = r.source_id)

-- name: newest
SELECT r.id, r.received_at, s.name AS source, r.reason, r.bytes, r.head
FROM gateway_rejections r JOIN sources s ON s.id = r.source_id
WHERE (%(source)s::text IS NULL OR s.name = %(source)s)
ORDER BY r.received_at DESC, r.id DESC
LIMIT %(limit)s

-- name: forget
DELETE FROM gateway_rejections WHERE received_at < now() - %(retention)s::interval
