-- name: now
SELECT clock_timestamp()

-- name: uncount
-- Failed jobs a person settled (replayed or discarded) stop counting as failed: their events
-- move, in the per-minute counters, from `aborted` to that state at the minute they failed,
-- so every count of failures (Connections, a source, Stats, the overview, alerts) says what
-- is failed now. The worker counted them at its transaction's minute, which a moment before
-- the attempt's time may be the previous one: that one, when the attempt's own holds none.
WITH settled AS (
    SELECT date_trunc('minute', at) AS minute, source_id, destination_id, sum(events) AS events
    FROM unnest(%(at)s::timestamptz[], %(sources)s::uuid[], %(destinations)s::uuid[],
                %(events)s::bigint[]) AS t(at, source_id, destination_id, events)
    GROUP BY 1, 2, 3
), counted AS (
    SELECT DISTINCT ON (m.minute, m.source_id, m.destination_id)
           s.minute, m.source_id, m.destination_id, least(m.events, s.events) AS events
    FROM settled m
    JOIN stats_minute s
      ON s.source_id = m.source_id AND s.destination_id = m.destination_id
     AND s.outcome = 'aborted' AND s.events > 0
     AND s.minute IN (m.minute, m.minute - interval '1 minute')
    ORDER BY m.minute, m.source_id, m.destination_id, s.minute DESC
), taken AS (
    UPDATE stats_minute s SET events = s.events - c.events
    FROM counted c
    WHERE s.minute = c.minute AND s.source_id = c.source_id
      AND s.destination_id = c.destination_id AND s.outcome = 'aborted'
)
INSERT INTO stats_minute (minute, source_id, destination_id, outcome, events)
SELECT minute, source_id, destination_id, %(state)s, events FROM counted
ON CONFLICT (minute, source_id, destination_id, outcome)
DO UPDATE SET events = stats_minute.events + EXCLUDED.events
