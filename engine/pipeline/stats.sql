-- name: add
INSERT INTO stats_minute (minute, source_id, destination_id, outcome, events)
SELECT date_trunc('minute', now()), s, d, o, n
FROM unnest(%(sources)s::uuid[], %(destinations)s::uuid[], %(outcomes)s::text[],
            %(events)s::bigint[]) AS t(s, d, o, n)
ON CONFLICT (minute, source_id, destination_id, outcome)
DO UPDATE SET events = stats_minute.events + EXCLUDED.events
